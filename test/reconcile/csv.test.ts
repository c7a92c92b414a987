// The settlement file parser: RFC 4180 quoting, per-row errors, limits.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  LINE_BYTES_MAX,
  parseRow,
  readSettlementFile,
  SettlementFileError,
  splitCsvLine,
} from '../../src/reconcile/csv.js';

const dir = mkdtempSync(join(tmpdir(), 'sa-csv-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const HEADER = 'transaction_id,shopper_id,merchant,amount,currency,settled_at,type';

async function readAll(text: string) {
  const file = join(dir, `f${Math.random()}.csv`);
  writeFileSync(file, text);
  const rows = [];
  for await (const batch of readSettlementFile(file, 2)) rows.push(...batch);
  return rows;
}

describe('settlement csv', () => {
  it('splits quoted fields', () => {
    expect(splitCsvLine('a,"b, c","d ""e"""')).toEqual(['a', 'b, c', 'd "e"']);
    expect(splitCsvLine('a,"b')).toBeNull();
    expect(splitCsvLine('a,b"c')).toBeNull();
    expect(splitCsvLine('')).toEqual(['']);
  });

  it('parses exact cents and keeps bad rows with their error', () => {
    const ok = parseRow(1, 'txn_1,456,"SAFEWAY #1, MAIN",97.4,USD,2026-11-21T18:00:00Z,clearing');
    expect(ok).toMatchObject({
      txn: 'txn_1',
      shopper: '456',
      merchant: 'SAFEWAY #1, MAIN',
      amountCents: 9740,
      error: null,
    });
    expect(parseRow(2, 'txn_1,456,S,0.10,USD,2026-11-21T18:00:00Z,clearing').amountCents).toBe(10);
    for (const bad of [
      'txn_1,456,S,1.001,USD,2026-11-21T18:00:00Z,clearing',
      'txn_1,456,S,0,USD,2026-11-21T18:00:00Z,clearing',
      'txn_1,456,S,-1.00,USD,2026-11-21T18:00:00Z,clearing',
      'txn_1,456,S,1.00,usd,2026-11-21T18:00:00Z,clearing',
      'txn_1,456,S,1.00,USD,yesterday,clearing',
      'txn_1,456,S,1.00,USD,2026-11-21T18:00:00Z,chargeback',
      'txn_1,456,S,1.00,USD,2026-11-21T18:00:00Z',
      ',456,S,1.00,USD,2026-11-21T18:00:00Z,clearing',
    ]) {
      expect(parseRow(3, bad).error, bad).not.toBeNull();
    }
  });

  it('streams rows in order, CRLF and a missing final newline included', async () => {
    const rows = await readAll(
      `${HEADER}\r\nt1,1,S,1.00,USD,2026-11-21T18:00:00Z,clearing\r\n\r\nt2,2,S,2.00,EUR,2026-11-21T18:00:00Z,stand_in\r\nt3,3,S,3.00,USD,2026-11-21T18:00:00Z,fail_open`,
    );
    expect(rows.map((r) => [r.rowNo, r.txn, r.amountCents, r.type])).toEqual([
      [1, 't1', 100, 'clearing'],
      [3, 't2', 200, 'stand_in'],
      [4, 't3', 300, 'fail_open'],
    ]);
  });

  it('refuses a missing header, an empty file and an over-long line', async () => {
    await expect(readAll('t1,1,S,1.00,USD,2026-11-21T18:00:00Z,clearing\n')).rejects.toThrow(
      SettlementFileError,
    );
    await expect(readAll('')).rejects.toThrow(SettlementFileError);
    await expect(readAll(`${HEADER}\n${'x'.repeat(LINE_BYTES_MAX + 10)}\n`)).rejects.toThrow(/longer than/);
  });
});
