// Refund rows of the settlement file (type `refund`, `<processor>:<refund id>`) against the
// `refunds` table (and refunds above what their authorization cleared), and the index reconciliation uses to find a processor's authorization ids.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { knexOf } from '../../src/db/orm.js';
import { reconcile } from '../../src/reconcile/reconcile.js';
import { createTestDb, type TestDb } from '../persister/helpers/pg.js';
import { T0 } from './generator.js';

let db: TestDb;
let dir: string;

const HOUR = 3_600_000;

interface Refund {
  processor: string;
  id: string;
  cents: number;
  currency?: string;
  auth?: string | null;
  atMs?: number;
}

const REFUNDS: Refund[] = [
  { processor: 'stripe', id: 'ipi_ok', cents: 500, auth: 'a1' },
  { processor: 'marqeta', id: 'mq_rf_1', cents: 700, auth: 'a2' },
  { processor: 'stripe', id: 'ipi_unsettled', cents: 300, auth: null },
  // The same refund id at two processors: two refunds, each settled only by its own row.
  { processor: 'marqeta', id: 'same_id', cents: 100, auth: 'a3' },
  { processor: 'lithic', id: 'same_id', cents: 200, auth: 'a4' },
  { processor: 'lithic', id: 'lt_rf_eur', cents: 900, currency: 'EUR', auth: 'a5' },
  // Refunded outside the window and in no row: not expected in this file.
  { processor: 'lithic', id: 'lt_rf_old', cents: 50, auth: 'a6', atMs: T0 - 30 * 86_400_000 },
];

const FILE = [
  'transaction_id,shopper_id,merchant,amount,currency,settled_at,type',
  'stripe:ipi_ok,s1,SAFEWAY,5.00,USD,2026-11-03T10:00:00Z,refund',
  'marqeta:mq_rf_1,s1,SAFEWAY,7.50,USD,2026-11-03T10:00:00Z,refund',
  'lithic:lt_rf_never,s1,SAFEWAY,4.00,USD,2026-11-03T10:00:00Z,refund',
  'marqeta:same_id,s1,SAFEWAY,1.00,USD,2026-11-03T10:00:00Z,refund',
  'lithic:lt_rf_eur,s1,SAFEWAY,9.00,USD,2026-11-03T10:00:00Z,refund',
  // A bare refund id is not matched: it could be any processor's.
  'ipi_ok,s1,SAFEWAY,5.00,USD,2026-11-03T10:00:00Z,refund',
  'stripe:ipi_ok,s1,SAFEWAY,5.00,USD,2026-11-03T11:00:00Z,refund',
  // A refund row naming an authorization's key is not that authorization's settlement.
  'stripe:iauth_R,s1,SAFEWAY,2.00,USD,2026-11-03T10:00:00Z,refund',
  'stripe:iauth_R,s1,SAFEWAY,8.00,USD,2026-11-03T10:00:00Z,clearing',
  'stripe:ipi_bad,s1,SAFEWAY,-1.00,USD,2026-11-03T10:00:00Z,refund',
].join('\n');

async function insertRows(): Promise<void> {
  const refunds = REFUNDS.map((r, i) => ({
    event_id: `ev_rf_${i}`,
    processor: r.processor,
    refund_id: r.id,
    card_id: 'card_1',
    shopper_id: 's1',
    authorization_ref: r.auth === null ? 'unknown' : `ref_${r.auth}`,
    authorization_id: r.auth ?? null,
    transaction_id: r.auth === null ? null : `txn_${r.auth}`,
    partition: 0,
    stream_id: `${T0 + i}-0`,
    currency: r.currency ?? 'USD',
    amount_cents: r.cents,
    refunded_at_ms: r.atMs ?? T0 + HOUR,
    recorded_ms: r.atMs ?? T0 + HOUR,
    flagged: r.auth === null,
  }));
  const k = knexOf(db.orm);
  await k.raw(
    `insert into refunds select x.* from json_to_recordset(?::json) as x(event_id text, processor text,
       refund_id text, card_id text, shopper_id text, authorization_ref text, authorization_id text,
       transaction_id text, partition int, stream_id text, currency text, amount_cents bigint,
       refunded_at_ms bigint, recorded_ms bigint, flagged boolean)`,
    [JSON.stringify(refunds)],
  );
  // The refunded authorizations, decided before the window (not expected in this file); a2 cleared
  // less than its refund: money came back that was never paid out.
  const linked = REFUNDS.filter((r) => r.auth != null).map((r, i) => ({
    authorization_id: r.auth,
    event_id: `ev_${r.auth}`,
    stream_id: `${i + 1}-1`,
    idempotency_key: `t:${r.auth}`,
    transaction_id: `txn_${r.auth}`,
    cleared_cents: r.auth === 'a2' ? 500 : 1000,
    processor: r.processor,
    processor_authorization_id: `ref_${r.auth}`,
  }));
  await k.raw(
    `insert into authorizations (authorization_id, event_id, partition, stream_id, idempotency_key, fingerprint,
            http_status, transaction_id, shopper_id, decision, mode, amount_cents, remaining_cents, cleared_cents,
            currency, merchant_name, merchant_address, decided_ms, processor, processor_authorization_id)
     select x.authorization_id, x.event_id, 0, x.stream_id, x.idempotency_key, 'f', 200, x.transaction_id, 's1',
            'approved', 'normal', 1000, 0, x.cleared_cents, 'USD', 'SAFEWAY', '', ?, x.processor,
            x.processor_authorization_id
       from json_to_recordset(?::json) as x(authorization_id text, event_id text, stream_id text,
            idempotency_key text, transaction_id text, cleared_cents bigint, processor text,
            processor_authorization_id text)`,
    [T0 - 10 * 86_400_000, JSON.stringify(linked)],
  );
  await k.raw(
    `insert into authorizations (authorization_id, event_id, partition, stream_id, idempotency_key, fingerprint,
            http_status, transaction_id, shopper_id, decision, mode, amount_cents, remaining_cents, cleared_cents,
            currency, merchant_name, merchant_address, decided_ms, processor, processor_authorization_id)
     values ('aR', 'ev_aR', 0, '1-0', 't:stripe:iauth_R', 'f', 200, 'stripe:iauth_R', 's1', 'approved', 'normal',
             800, 0, 800, 'USD', 'SAFEWAY', '', ?, 'stripe', 'iauth_R')`,
    [T0 + HOUR],
  );
}

beforeAll(async () => {
  db = await createTestDb();
  dir = mkdtempSync(join(tmpdir(), 'sa-recon-refund-'));
  await insertRows();
});

afterAll(async () => {
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

describe('reconcile refunds', () => {
  it('matches booked refunds by <processor>:<refund id> and reports each break once', async () => {
    const file = join(dir, 'refunds.csv');
    writeFileSync(file, `${FILE}\n`);
    const options = { fromMs: T0, toMs: T0 + 86_400_000 };
    const result = await reconcile(knexOf(db.orm), file, 'refunds.csv', options);
    const found = result.items.map((it) => ({
      key: it.rowKey,
      kind: it.kind,
      klass: it.klass,
      txn: it.transactionId,
      auth: it.authorizationId,
      file: it.fileAmountCents,
      ours: it.ourAmountCents,
    }));
    expect(found).toEqual([
      {
        key: 'row:10',
        kind: 'malformed_row',
        klass: 'unclassified',
        txn: 'stripe:ipi_bad',
        auth: null,
        file: null,
        ours: null,
      },
      {
        key: 'row:2',
        kind: 'refund_amount_differs',
        klass: 'needs_review',
        txn: 'marqeta:mq_rf_1',
        auth: 'a2',
        file: 750,
        ours: 700,
      },
      {
        key: 'row:3',
        kind: 'refund_not_booked',
        klass: 'needs_review',
        txn: 'lithic:lt_rf_never',
        auth: null,
        file: 400,
        ours: null,
      },
      {
        key: 'row:5',
        kind: 'refund_currency_differs',
        klass: 'needs_review',
        txn: 'lithic:lt_rf_eur',
        auth: 'a5',
        file: 900,
        ours: 900,
      },
      {
        key: 'row:6',
        kind: 'refund_not_booked',
        klass: 'needs_review',
        txn: 'ipi_ok',
        auth: null,
        file: 500,
        ours: null,
      },
      {
        key: 'row:7',
        kind: 'duplicate_settlement',
        klass: 'needs_review',
        txn: 'stripe:ipi_ok',
        auth: 'a1',
        file: 500,
        ours: 500,
      },
      {
        key: 'row:8',
        kind: 'refund_not_booked',
        klass: 'needs_review',
        txn: 'stripe:iauth_R',
        auth: null,
        file: 200,
        ours: null,
      },
      {
        key: 'refund:lithic:same_id',
        kind: 'refund_never_settled',
        klass: 'needs_review',
        txn: 'lithic:same_id',
        auth: 'a4',
        file: null,
        ours: 200,
      },
      {
        key: 'refund:stripe:ipi_unsettled',
        kind: 'refund_never_settled',
        klass: 'needs_review',
        txn: 'stripe:ipi_unsettled',
        auth: null,
        file: null,
        ours: 300,
      },
      {
        key: 'refund_excess:marqeta:ref_a2',
        kind: 'refund_exceeds_clearing',
        klass: 'needs_review',
        txn: 'marqeta:ref_a2',
        auth: 'a2',
        file: null,
        ours: 700,
      },
    ]);
    // Refund breaks post nothing: a person decides.
    const posted = await db.query<{ n: string }>(
      `select count(*) as n from ledger_postings where posting_id like 'recon:%'`,
    );
    expect(Number(posted[0]?.n)).toBe(0);
    const again = await reconcile(knexOf(db.orm), file, 'refunds.csv', options);
    expect(again.replayed).toBe(true);
    expect(again.items).toHaveLength(result.items.length);
  });

  it('finds a processor authorization id through authorizations_processor_auth_idx', async () => {
    const k = knexOf(db.orm);
    // Enough native swipes (no processor) that a scan costs more than the index.
    await k.raw(
      `insert into authorizations (authorization_id, event_id, partition, stream_id, idempotency_key, fingerprint,
              http_status, transaction_id, shopper_id, decision, mode, amount_cents, remaining_cents, currency,
              merchant_name, merchant_address, decided_ms, processor, processor_authorization_id)
       select 'n' || g, 'ev_n' || g, 0, g || '-0', 't:n' || g, 'f', 200, 'n' || g, 's1', 'approved', 'normal', 100,
              0, 'USD', 'SAFEWAY', '', ?, case when g % 10 = 0 then 'lithic' end,
              case when g % 10 = 0 then 'lt_' || g end
         from generate_series(1, 20000) g`,
      [T0],
    );
    await k.raw('analyze authorizations');
    const plan = await db.query<{ 'QUERY PLAN': string }>(
      `explain select authorization_id from authorizations where processor = 'lithic' and processor_authorization_id = 'lt_500'`,
    );
    expect(plan.map((p) => p['QUERY PLAN']).join('\n')).toContain('authorizations_processor_auth_idx');
  });
});
