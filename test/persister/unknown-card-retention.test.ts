// Retention of unknown-card swipe records against a real Postgres: rows older than the cut go,
// newer ones stay, one run deletes at most its batches, and a run keeps up with the cap.
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { knexOf } from '../../src/db/orm.js';
import {
  PRUNE_BATCH_ROWS,
  PRUNE_BATCHES_MAX,
  pruneBatchesFor,
  pruneUnknownCardSwipes,
} from '../../src/persister/unknownCardRetention.js';
import { createTestDb, type TestDb } from './helpers/pg.js';

let db: TestDb;

beforeAll(async () => {
  db = await createTestDb();
});

afterAll(async () => {
  await db?.drop();
});

beforeEach(async () => {
  await db.query('truncate unknown_card_swipes');
});

/** `n` rows decided at `decidedMs`, request ids `<tag>-0..n-1`. */
async function insertRows(tag: string, n: number, decidedMs: number): Promise<void> {
  await db.query(
    `insert into unknown_card_swipes select 'lithic', ? || '-' || i, 'ref', 'auth', 'card', 'unknown',
       100, 'USD', 'm', '5411', '94107', 'n', 'declined', 'UNKNOWN_SHOPPER', ?, 'e' || i, 0, '0-' || i
     from generate_series(0, ? - 1) as i`,
    [tag, decidedMs, n],
  );
}

async function count(where: string): Promise<number> {
  const [r] = await db.query<{ n: string }>(`select count(*) as n from unknown_card_swipes where ${where}`);
  return Number(r?.n);
}

it('deletes rows decided before the cut and keeps the rest', async () => {
  await insertRows('old', 7, 1_000);
  await insertRows('cut', 3, 2_000);
  await insertRows('new', 5, 3_000);
  const deleted = await pruneUnknownCardSwipes(knexOf(db.orm), 2_000, 2);
  expect(deleted).toBe(7);
  expect(await count('true')).toBe(8);
  expect(await count('decided_ms < 2000')).toBe(0);
});

it('deletes at most PRUNE_BATCHES_MAX batches a run; the next run goes on', async () => {
  const batch = 3;
  await insertRows('old', batch * PRUNE_BATCHES_MAX + 4, 1_000);
  expect(await pruneUnknownCardSwipes(knexOf(db.orm), 2_000, batch)).toBe(batch * PRUNE_BATCHES_MAX);
  expect(await count('true')).toBe(4);
  expect(await pruneUnknownCardSwipes(knexOf(db.orm), 2_000, batch)).toBe(4);
  expect(await count('true')).toBe(0);
});

it('a run can delete a whole hour of the most the cap lets in (the prune keeps up with a flood)', async () => {
  // 10 a minute on 128 partitions is 76,800 rows an hour: more than 10 batches of 5,000.
  for (const [cap, partitions] of [
    [10, 64],
    [10, 128],
    [1_000, 1_024],
  ] as const) {
    const perHour = cap * partitions * 60;
    expect(pruneBatchesFor(cap, partitions) * PRUNE_BATCH_ROWS).toBeGreaterThanOrEqual(perHour);
  }
  expect(pruneBatchesFor(0, 64)).toBe(PRUNE_BATCHES_MAX);
  const batch = 3;
  await insertRows('flood', batch * (PRUNE_BATCHES_MAX + 2), 1_000);
  expect(await pruneUnknownCardSwipes(knexOf(db.orm), 2_000, batch, PRUNE_BATCHES_MAX + 2)).toBe(
    batch * (PRUNE_BATCHES_MAX + 2),
  );
  expect(await count('true')).toBe(0);
});
