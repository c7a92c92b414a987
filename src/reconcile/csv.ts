// Streaming parser of the processor's settlement file (README "Settlement
// file (reconcile)"). RFC 4180 fields (quotes for commas and quotes, no line
// breaks inside a field), one header line, bounded: a line longer than
// LINE_BYTES_MAX or a file with more than ROWS_MAX rows is refused. A row that
// does not parse is kept with its error: reconciliation queues it.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

export const HEADER = [
  'transaction_id',
  'shopper_id',
  'merchant',
  'amount',
  'currency',
  'settled_at',
  'type',
] as const;
export const SETTLEMENT_TYPES = ['clearing', 'stand_in', 'fail_open', 'refund'] as const;

export const LINE_BYTES_MAX = 4096;
export const ROWS_MAX = 10_000_000;
const TEXT_MAX = 256;
/** CONTRACT amounts: 0 < amount <= 1,000,000.00, at most 2 decimals. */
const AMOUNT = /^(0|[1-9]\d{0,6})(\.\d{1,2})?$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const CURRENCY = /^[A-Z]{3}$/;
const TXN = /^[\x21-\x7e]{1,128}$/;

export interface SettlementRow {
  /** 1-based data row number (the header is row 0). */
  readonly rowNo: number;
  readonly txn: string;
  readonly shopper: string;
  readonly merchant: string;
  readonly amountCents: number | null;
  readonly currency: string;
  readonly settledMs: number | null;
  readonly type: string;
  /** Why the row cannot be compared (null: it parsed). */
  readonly error: string | null;
}

export class SettlementFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SettlementFileError';
  }
}

/** Splits one CSV line into fields (RFC 4180 quoting); null when the quoting is broken. */
export function splitCsvLine(line: string): string[] | null {
  const out: string[] = [];
  let i = 0;
  for (;;) {
    if (line[i] === '"') {
      let v = '';
      i++;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q < 0) return null;
        v += line.slice(i, q);
        if (line[q + 1] === '"') {
          v += '"';
          i = q + 2;
        } else {
          i = q + 1;
          break;
        }
      }
      out.push(v);
      if (i === line.length) return out;
      if (line[i] !== ',') return null;
      i++;
    } else {
      const c = line.indexOf(',', i);
      const v = c < 0 ? line.slice(i) : line.slice(i, c);
      if (v.includes('"')) return null;
      out.push(v);
      if (c < 0) return out;
      i = c + 1;
    }
  }
}

function cents(amount: string): number | null {
  if (!AMOUNT.test(amount)) return null;
  const [whole, frac = ''] = amount.split('.');
  const v = Number(whole) * 100 + Number(frac.padEnd(2, '0'));
  return v > 0 ? v : null;
}

export function parseRow(rowNo: number, line: string): SettlementRow {
  const f = splitCsvLine(line);
  const bad = (error: string, fields: string[] = []): SettlementRow => ({
    rowNo,
    txn: (fields[0] ?? '').slice(0, 128),
    shopper: (fields[1] ?? '').slice(0, 64),
    merchant: (fields[2] ?? '').slice(0, TEXT_MAX),
    amountCents: null,
    currency: (fields[4] ?? '').slice(0, 3),
    settledMs: null,
    type: (fields[6] ?? '').slice(0, 16),
    error,
  });
  if (f === null) return bad('broken quoting');
  if (f.length !== HEADER.length) return bad(`expected ${HEADER.length} fields, got ${f.length}`, f);
  const [txn, shopper, merchant, amount, currency, settledAt, type] = f as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  if (!TXN.test(txn)) return bad('transaction_id must be 1-128 printable characters', f);
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(shopper)) return bad('bad shopper_id', f);
  if (merchant.length > TEXT_MAX) return bad('merchant too long', f);
  const amountCents = cents(amount);
  if (amountCents === null)
    return bad('amount must be a decimal in (0, 1000000.00] with at most 2 decimals', f);
  if (!CURRENCY.test(currency)) return bad('currency must be an ISO 4217 code', f);
  const settledMs = RFC3339.test(settledAt) ? Date.parse(settledAt) : Number.NaN;
  if (!Number.isFinite(settledMs)) return bad('settled_at must be an RFC 3339 date-time', f);
  if (!(SETTLEMENT_TYPES as readonly string[]).includes(type))
    return bad(`type must be one of ${SETTLEMENT_TYPES.join(', ')}`, f);
  return { rowNo, txn, shopper, merchant, amountCents, currency, settledMs, type, error: null };
}

/** sha256 of the file's bytes (the run's identity: a re-run of the same file changes nothing). */
export async function fileHash(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Yields rows in file order, in batches of at most `batchRows`. */
export async function* readSettlementFile(path: string, batchRows = 5000): AsyncGenerator<SettlementRow[]> {
  let pending: Buffer = Buffer.alloc(0);
  let lineNo = 0;
  let batch: SettlementRow[] = [];
  const take = (raw: Buffer): SettlementRow | undefined => {
    const line = raw.toString('utf8').replace(/\r$/, '');
    if (lineNo === 0) {
      lineNo++;
      const header = splitCsvLine(line.replace(/^\uFEFF/, ''));
      if (header === null || header.join(',') !== HEADER.join(','))
        throw new SettlementFileError(`the first line must be the header ${HEADER.join(',')}`);
      return undefined;
    }
    if (lineNo > ROWS_MAX) throw new SettlementFileError(`more than ${ROWS_MAX} rows`);
    const rowNo = lineNo++;
    if (line.length === 0) return undefined; // blank lines (a trailing newline) are not rows
    return parseRow(rowNo, line);
  };
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    pending = pending.length === 0 ? (chunk as Buffer) : Buffer.concat([pending, chunk as Buffer]);
    let start = 0;
    for (;;) {
      const nl = pending.indexOf(10, start);
      if (nl < 0) break;
      if (nl - start > LINE_BYTES_MAX)
        throw new SettlementFileError(`line ${lineNo + 1} is longer than ${LINE_BYTES_MAX} bytes`);
      const row = take(pending.subarray(start, nl));
      if (row !== undefined) batch.push(row);
      start = nl + 1;
      if (batch.length >= batchRows) {
        yield batch;
        batch = [];
      }
    }
    pending = pending.subarray(start);
    if (pending.length > LINE_BYTES_MAX)
      throw new SettlementFileError(`line ${lineNo + 1} is longer than ${LINE_BYTES_MAX} bytes`);
  }
  if (pending.length > 0) {
    const row = take(pending);
    if (row !== undefined) batch.push(row);
  }
  if (lineNo === 0) throw new SettlementFileError('empty file: no header');
  if (batch.length > 0) yield batch;
}
