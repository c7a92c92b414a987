// Retention of `unknown_card_swipes` (docs/processors.md "Swipes on unknown cards"). Those rows
// are evidence for support and fraud review, not money: nothing references them, and a flood of
// signed swipes on unknown cards adds up to UNKNOWN_CARD_RECORDS_PER_MINUTE x partitions rows a
// minute. Rows older than UNKNOWN_CARD_RETENTION_DAYS are deleted in small batches, so a prune
// never holds long locks or one long transaction; every persister pod may run it (deletes commute).
// A run may delete twice what the cap lets in per hour, so the table stays bounded by the
// retention window times the cap.
import type { Knex } from 'knex';

/** Hourly: the age cut moves slowly, and a run costs one indexed range scan. */
export const RETENTION_INTERVAL_MS = 3_600_000;

/** Rows per DELETE statement, and the fewest statements a run may issue (50,000 rows). */
export const PRUNE_BATCH_ROWS = 5_000;
export const PRUNE_BATCHES_MAX = 10;

/**
 * Statements a run may issue: enough for twice the most the cap lets in per hour (the run
 * interval), so a sustained flood never outgrows the prune; a run stops at its first short batch.
 */
export function pruneBatchesFor(recordsPerMinute: number, partitions: number): number {
  const perHour = recordsPerMinute * partitions * 60;
  return Math.max(PRUNE_BATCHES_MAX, Math.ceil((2 * perHour) / PRUNE_BATCH_ROWS));
}

/** Deletes rows decided before `cutoffMs`, at most `batchesMax` batches; returns how many. */
export async function pruneUnknownCardSwipes(
  knex: Knex,
  cutoffMs: number,
  batchRows = PRUNE_BATCH_ROWS,
  batchesMax = PRUNE_BATCHES_MAX,
): Promise<number> {
  let deleted = 0;
  for (let i = 0; i < batchesMax; i++) {
    // ctid picks the oldest batch through the decided_ms index without a sort of the whole table.
    const r = await knex.raw(
      `delete from unknown_card_swipes where ctid = any(array(
         select ctid from unknown_card_swipes where decided_ms < ? order by decided_ms limit ?))`,
      [cutoffMs, batchRows],
    );
    const n = (r as { rowCount: number }).rowCount;
    deleted += n;
    if (n < batchRows) break;
  }
  return deleted;
}
