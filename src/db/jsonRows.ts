// Set-based writes: one multi-row statement per table with a single JSON bind
// (`json_to_recordset(?::json)`), so the bind count stays one whatever the batch size.
// Shared by the persister's appliers and the ledger.
import type { Knex } from '@mikro-orm/postgresql';

export type Db = Knex | Knex.Transaction;

/** Runs `sql` with `data` as its one JSON parameter and returns its rows; no data, no statement. */
export async function jsonRows<T>(db: Db, sql: string, data: readonly object[]): Promise<T[]> {
  if (data.length === 0) return [];
  const res = (await db.raw(sql, [JSON.stringify(data)])) as { rows: T[] };
  return res.rows;
}
