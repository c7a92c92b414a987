// Reconciliation report: report.json (everything) and report.txt (a table a
// person reads: totals by kind and class, then every item).
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type ReconResult, summarize } from './reconcile.js';

function cents(v: number | null): string {
  if (v === null) return '';
  const sign = v < 0 ? '-' : '';
  const a = Math.abs(v);
  return `${sign}${Math.floor(a / 100)}.${String(a % 100).padStart(2, '0')}`;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export function renderText(r: ReconResult, fileName: string): string {
  const s = summarize(r.items);
  const kinds = Object.entries(s.byKind)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => {
      const [kind, klass] = k.split('/') as [string, string];
      return [kind, klass, String(v.count), cents(v.fileCents), cents(v.ourCents)];
    });
  const items = r.items.map((it) => [
    it.rowKey,
    it.kind,
    it.klass,
    it.transactionId ?? '',
    cents(it.fileAmountCents),
    cents(it.ourAmountCents),
    it.fileCurrency ?? it.ourCurrency ?? '',
    it.detail,
  ]);
  return [
    `Reconciliation of ${fileName}`,
    `file sha256 ${r.fileHash}  run ${r.runId}${r.replayed ? ' (already reconciled: stored result, nothing changed)' : ''}`,
    `rows ${r.rows}  items ${r.items.length}  auto_adjusted ${s.byClass.auto_adjusted}  needs_review ${s.byClass.needs_review}  unclassified ${s.byClass.unclassified}`,
    `authorizations expected: decided ${new Date(r.windowFromMs).toISOString()} .. ${new Date(r.windowToMs).toISOString()}`,
    `took ${r.durationMs} ms`,
    '',
    table(['kind', 'class', 'count', 'file amount', 'our amount'], kinds),
    '',
    table(['key', 'kind', 'class', 'transaction', 'file', 'ours', 'currency', 'detail'], items),
    '',
  ].join('\n');
}

export async function writeReport(
  outDir: string,
  r: ReconResult,
  fileName: string,
): Promise<{ json: string; text: string }> {
  await mkdir(outDir, { recursive: true });
  const json = join(outDir, 'report.json');
  const text = join(outDir, 'report.txt');
  await writeFile(
    json,
    `${JSON.stringify(
      {
        file: fileName,
        file_sha256: r.fileHash,
        run_id: r.runId,
        replayed: r.replayed,
        rows: r.rows,
        window: { from_ms: r.windowFromMs, to_ms: r.windowToMs },
        duration_ms: r.durationMs,
        summary: summarize(r.items),
        items: r.items,
      },
      null,
      1,
    )}\n`,
  );
  await writeFile(text, renderText(r, fileName));
  return { json, text };
}
