// Reconciliation of a settlement file naming the processors' own ids
// (`<processor>:<id>`: Stripe iauth_…, Marqeta and Lithic transaction tokens),
// matched against the ids kept on each authorization, beside a row in the
// native form. Incremental requests settle as one authorization.
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

interface Auth {
  id: string;
  txn: string;
  processor: string | null;
  processorAuth: string | null;
  amount: number;
  cleared: number | null;
  decision?: string;
}

const AUTHS: Auth[] = [
  // Stripe: the first request and one incremental request on iauth_A (15.00 in all).
  {
    id: 'a1',
    txn: 'stripe:iauth_A',
    processor: 'stripe',
    processorAuth: 'iauth_A',
    amount: 1000,
    cleared: 1000,
  },
  {
    id: 'a2',
    txn: 'stripe:iauth_A:1',
    processor: 'stripe',
    processorAuth: 'iauth_A',
    amount: 500,
    cleared: 500,
  },
  // Marqeta: our transaction id carries the JIT token, the file the transaction token.
  {
    id: 'a3',
    txn: 'marqeta:jit_1',
    processor: 'marqeta',
    processorAuth: 'mq_txn_1',
    amount: 2000,
    cleared: 2000,
  },
  // Lithic: settled as cleared; and one cleared that the file never settles.
  {
    id: 'a4',
    txn: 'lithic:ev_1',
    processor: 'lithic',
    processorAuth: 'lt_txn_1',
    amount: 3000,
    cleared: 3000,
  },
  { id: 'a5', txn: 'lithic:ev_2', processor: 'lithic', processorAuth: 'lt_txn_2', amount: 700, cleared: 700 },
  // A declined Stripe request the file settles anyway.
  {
    id: 'a6',
    txn: 'stripe:iauth_D',
    processor: 'stripe',
    processorAuth: 'iauth_D',
    amount: 900,
    cleared: null,
    decision: 'declined',
  },
  // A swipe on the service's own API, settled in the native form.
  { id: 'a7', txn: 'txn_native_1', processor: null, processorAuth: null, amount: 400, cleared: 400 },
];

const FILE = [
  'transaction_id,shopper_id,merchant,amount,currency,settled_at,type',
  'stripe:iauth_A,s1,SAFEWAY,15.00,USD,2026-11-03T10:00:00Z,clearing',
  'marqeta:mq_txn_1,s1,SAFEWAY,21.00,USD,2026-11-03T10:00:00Z,clearing',
  'lithic:lt_txn_1,s1,SAFEWAY,30.00,USD,2026-11-03T10:00:00Z,clearing',
  'lithic:lt_txn_missing,s1,SAFEWAY,5.00,USD,2026-11-03T10:00:00Z,clearing',
  'stripe:iauth_D,s1,SAFEWAY,9.00,USD,2026-11-03T10:00:00Z,clearing',
  'txn_native_1,s1,SAFEWAY,4.00,USD,2026-11-03T10:00:00Z,clearing',
].join('\n');

async function insertAuths(): Promise<void> {
  const rows = AUTHS.map((a, i) => ({
    authorization_id: a.id,
    event_id: `ev_${a.id}`,
    partition: i,
    stream_id: `${T0 + i}-0`,
    idempotency_key: `t:${a.txn}`,
    fingerprint: 'f',
    http_status: a.decision === 'declined' ? 402 : 200,
    transaction_id: a.txn,
    shopper_id: 's1',
    decision: a.decision ?? 'approved',
    mode: 'normal',
    amount_cents: a.amount,
    remaining_cents: 0,
    cleared_cents: a.cleared,
    currency: 'USD',
    merchant_name: 'SAFEWAY',
    merchant_address: '',
    decided_ms: T0 + 3_600_000,
    processor: a.processor,
    processor_authorization_id: a.processorAuth,
  }));
  await knexOf(db.orm).raw(
    `insert into authorizations (authorization_id, event_id, partition, stream_id, idempotency_key, fingerprint,
            http_status, transaction_id, shopper_id, decision, mode, amount_cents, remaining_cents, cleared_cents,
            currency, merchant_name, merchant_address, decided_ms, processor, processor_authorization_id)
     select x.* from json_to_recordset(?::json) as x(authorization_id text, event_id text, partition int,
            stream_id text, idempotency_key text, fingerprint text, http_status int, transaction_id text,
            shopper_id text, decision text, mode text, amount_cents bigint, remaining_cents bigint,
            cleared_cents bigint, currency text, merchant_name text, merchant_address text, decided_ms bigint,
            processor text, processor_authorization_id text)`,
    [JSON.stringify(rows)],
  );
}

beforeAll(async () => {
  db = await createTestDb();
  dir = mkdtempSync(join(tmpdir(), 'sa-recon-proc-'));
  await insertAuths();
});

afterAll(async () => {
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

describe('reconcile on the processors own ids', () => {
  it('matches iauth_ and transaction tokens, sums incremental requests, finds each break', async () => {
    const file = join(dir, 'processors.csv');
    writeFileSync(file, `${FILE}\n`);
    const result = await reconcile(knexOf(db.orm), file, 'processors.csv', {
      fromMs: T0,
      toMs: T0 + 86_400_000,
    });
    const found = result.items.map((it) => ({
      kind: it.kind,
      txn: it.transactionId,
      auth: it.authorizationId,
      file: it.fileAmountCents,
      ours: it.ourAmountCents,
    }));
    expect(found).toEqual([
      // Marqeta settled 1.00 above the clearing of its transaction token.
      { kind: 'amount_differs', txn: 'marqeta:mq_txn_1', auth: 'a3', file: 2100, ours: 2000 },
      // A Lithic token we never authorized.
      { kind: 'unknown_transaction', txn: 'lithic:lt_txn_missing', auth: null, file: 500, ours: null },
      // A Stripe authorization we declined.
      { kind: 'settled_declined_authorization', txn: 'stripe:iauth_D', auth: 'a6', file: 900, ours: 0 },
      // The Lithic clearing the file never settled.
      { kind: 'authorized_never_settled', txn: 'lithic:ev_2', auth: 'a5', file: null, ours: 700 },
    ]);
  });
});
