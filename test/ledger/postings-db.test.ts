// writePostings against a real Postgres: idempotent per posting, and card-holds
// accounts upserted only when not already known to exist.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { knexOf } from '../../src/db/orm.js';
import { KnownAccounts, move, type Posting, writePostings } from '../../src/ledger/postings.js';
import { createTestDb, type TestDb } from '../persister/helpers/pg.js';

let db: TestDb;

beforeAll(async () => {
  db = await createTestDb();
});

afterAll(async () => {
  await db?.drop();
});

function approval(id: string, shopper: string, cents: number): Posting {
  return {
    postingId: id,
    kind: 'authorization',
    authorizationId: `auth_${id}`,
    transactionId: `t_${id}`,
    shopperId: shopper,
    currency: 'USD',
    eventMs: 1,
    transfers: move('program_funding', `card_holds:${shopper}`, cents),
  };
}

async function accounts(): Promise<string[]> {
  const rows = await db.query<{ account_id: string }>(
    "select account_id from ledger_accounts where kind = 'card_holds' order by 1",
  );
  return rows.map((r) => r.account_id);
}

it('writes a posting once and reports the card accounts it upserted', async () => {
  const k = knexOf(db.orm);
  const first = await writePostings(k, [approval('p1', 's1', 500)]);
  expect([...first.posted]).toEqual(['p1']);
  expect(first.accounts).toEqual(['card_holds:s1']);
  const again = await writePostings(k, [approval('p1', 's1', 500)]);
  expect(again.posted.size).toBe(0);
  const [n] = await db.query<{ n: string }>(
    "select count(*)::text as n from ledger_transfers where posting_id = 'p1'",
  );
  expect(n?.n).toBe('1');
  expect(await accounts()).toEqual(['card_holds:s1']);
});

it('skips the upsert for accounts known to exist, and only for those', async () => {
  const k = knexOf(db.orm);
  const known = new KnownAccounts();
  // Pretend s2's account is known (it is not in the table): the write must not create it.
  known.addAll(['card_holds:s2']);
  const r = await writePostings(k, [approval('p2', 's2', 100), approval('p3', 's3', 200)], known);
  expect(r.accounts).toEqual(['card_holds:s3']);
  expect(await accounts()).toEqual(['card_holds:s1', 'card_holds:s3']);
  // The transfers are written either way: accounts are a listing, not a foreign key.
  const [n] = await db.query<{ n: string }>(
    "select count(*)::text as n from ledger_transfers where posting_id in ('p2', 'p3')",
  );
  expect(n?.n).toBe('2');
});
