// The ledger_transfers migration moves finance's rows: every posting and entry
// written before it must read the same afterwards (through the views), and
// down() must give back the same tables.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LedgerEntry } from '../../src/db/entities.js';
import { createTestDb, type TestDb } from '../persister/helpers/pg.js';

let db: TestDb;
/** Down to the state before ledger_transfers: every later migration is undone first. */
const BEFORE_TRANSFERS = { to: 'Migration20261122050000_ledger_transfers' };
/** Checked in, written only by scripts/generate-migration.mjs: running migrations must not touch it. */
const SNAPSHOT = new URL('../../src/db/migrations/.snapshot-swipe-authorizer.json', import.meta.url);
const snapshotAtStart = readFileSync(SNAPSHOT, 'utf8');

beforeAll(async () => {
  db = await createTestDb();
});

afterAll(async () => {
  await db?.drop();
});

const ENTRIES =
  'select posting_id, line, account_id, currency, amount_cents::text, authorization_id from ledger_entries order by 1, 2';
const POSTINGS = `select posting_id, kind, authorization_id, transaction_id, shopper_id, currency, event_ms::text, created_at
                    from ledger_postings order by 1`;

async function relkind(name: string): Promise<string | undefined> {
  const [r] = await db.query<{ relkind: string }>('select relkind from pg_class where relname = ?', [name]);
  return r?.relkind;
}

it('moves postings and entries into transfers and back without changing what they read', async () => {
  const migrator = db.orm.getMigrator();
  await migrator.down(BEFORE_TRANSFERS); // back to separate postings and entries tables
  expect(await relkind('ledger_entries')).toBe('r');
  await db.query(
    `insert into ledger_postings (posting_id, kind, authorization_id, transaction_id, shopper_id, currency, event_ms) values
       ('e1', 'authorization', 'auth_1', 't1', 's1', 'USD', 1000),
       ('e2', 'clearing', 'auth_1', 't1', 's1', 'USD', 2000),
       ('e3', 'reversal', 'auth_2', 't2', 's2', 'XXX', 2500),
       ('recon:amount_differs:t9', 'adjustment', null, 't9', 's9', 'EUR', 3000)`,
  );
  await db.query(
    `insert into ledger_entries (posting_id, line, account_id, currency, amount_cents, authorization_id) values
       ('e1', 0, 'program_funding', 'USD', -500, 'auth_1'), ('e1', 1, 'card_holds:s1', 'USD', 500, 'auth_1'),
       ('e2', 0, 'card_holds:s1', 'USD', -500, 'auth_1'), ('e2', 1, 'program_funding', 'USD', 500, 'auth_1'),
       ('e2', 2, 'program_funding', 'USD', -480, 'auth_1'),
       ('e2', 3, 'merchant_settlement_payable', 'USD', 480, 'auth_1'),
       ('e3', 0, 'card_holds:s2', 'XXX', -9, 'auth_2'), ('e3', 1, 'program_funding', 'XXX', 9, 'auth_2'),
       ('recon:amount_differs:t9', 0, 'adjustments', 'EUR', -7, null),
       ('recon:amount_differs:t9', 1, 'merchant_settlement_payable', 'EUR', 7, null)`,
  );
  const entries = await db.query(ENTRIES);
  const postings = await db.query(POSTINGS);

  await migrator.up();
  expect(await relkind('ledger_entries')).toBe('v');
  expect(await relkind('ledger_postings')).toBe('v');
  expect(
    await db.query(
      'select posting_id, line, debit_account, credit_account, amount_cents::int as cents from ledger_transfers order by 1, 2',
    ),
  ).toEqual([
    {
      posting_id: 'e1',
      line: 0,
      debit_account: 'program_funding',
      credit_account: 'card_holds:s1',
      cents: 500,
    },
    {
      posting_id: 'e2',
      line: 0,
      debit_account: 'card_holds:s1',
      credit_account: 'program_funding',
      cents: 500,
    },
    {
      posting_id: 'e2',
      line: 1,
      debit_account: 'program_funding',
      credit_account: 'merchant_settlement_payable',
      cents: 480,
    },
    {
      posting_id: 'e3',
      line: 0,
      debit_account: 'card_holds:s2',
      credit_account: 'program_funding',
      cents: 9,
    },
    {
      posting_id: 'recon:amount_differs:t9',
      line: 0,
      debit_account: 'adjustments',
      credit_account: 'merchant_settlement_payable',
      cents: 7,
    },
  ]);
  expect(await db.query(ENTRIES)).toEqual(entries);
  expect(await db.query(POSTINGS)).toEqual(postings);
  // The read-only entity over the view (src/db/entities.ts) maps the same rows.
  const clearing = await db.orm.em
    .fork()
    .find(LedgerEntry, { postingId: 'e2' }, { orderBy: { line: 'asc' } });
  expect(clearing.map((e) => [e.line, e.accountId, e.amountCents])).toEqual([
    [0, 'card_holds:s1', -500n],
    [1, 'program_funding', 500n],
    [2, 'program_funding', -480n],
    [3, 'merchant_settlement_payable', 480n],
  ]);
  // What an authorization still holds, as docs/ledger.md queries it.
  const [held] = await db.query<{ held: string }>(
    'select coalesce(sum(amount_cents), 0)::text as held from ledger_entries where account_id = ? and authorization_id = ?',
    ['card_holds:s1', 'auth_1'],
  );
  expect(held?.held).toBe('0');

  await migrator.down(BEFORE_TRANSFERS);
  expect(await relkind('ledger_entries')).toBe('r');
  expect(await relkind('ledger_transfers')).toBeUndefined();
  expect(await db.query(ENTRIES)).toEqual(entries);
  expect(await db.query(POSTINGS)).toEqual(postings);
  await migrator.up();
  expect(await db.query(ENTRIES)).toEqual(entries);
});

it('refuses to migrate entries that are not (from, to) pairs', async () => {
  const migrator = db.orm.getMigrator();
  await migrator.down(BEFORE_TRANSFERS);
  await db.query(
    `insert into ledger_postings (posting_id, kind, currency, event_ms) values ('odd', 'adjustment', 'USD', 1)`,
  );
  // Balanced, but not written by move(): three entries.
  await db.query(
    `insert into ledger_entries (posting_id, line, account_id, currency, amount_cents) values
       ('odd', 0, 'adjustments', 'USD', -10), ('odd', 1, 'merchant_settlement_payable', 'USD', 4),
       ('odd', 2, 'failopen_exposure', 'USD', 6)`,
  );
  await expect(migrator.up()).rejects.toThrow(/not all \(from, to\) pairs/);
  // Nothing moved: the tables are as they were.
  expect(await relkind('ledger_entries')).toBe('r');
  expect(
    (
      await db.query<{ n: string }>("select count(*)::text as n from ledger_entries where posting_id = 'odd'")
    )[0]?.n,
  ).toBe('3');
  // A down() that was not followed by a successful up() must not leave its schema in the
  // checked-in snapshot (MikroORM writes it after every migration run when snapshots are on).
  expect(readFileSync(SNAPSHOT, 'utf8')).toBe(snapshotAtStart);
});
