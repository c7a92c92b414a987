// Seeded generator of a processor settlement file and the Postgres state it
// is compared with, with a known number of breaks of every kind
// (src/reconcile/reconcile.ts KINDS) and noise that must not be flagged.
import type { Knex } from '@mikro-orm/postgresql';
import type { ItemClass, Kind } from '../../src/reconcile/reconcile.js';

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const DAY = 86_400_000;
export const T0 = Date.parse('2026-11-01T00:00:00Z');

interface AuthRow {
  authorization_id: string;
  transaction_id: string | null;
  shopper_id: string;
  decision: 'approved' | 'declined';
  mode: string;
  amount_cents: number;
  reversed_cents: number;
  cleared_cents: number | null;
  expired_cents: number;
  expired_ms: number | null;
  late_ms: number | null;
  currency: string;
  decided_ms: number;
}

interface FileRow {
  txn: string;
  shopper: string;
  merchant: string;
  amount: string;
  currency: string;
  settledMs: number;
  type: string;
  /** What reconciliation must say about this row (undefined: it matches). */
  expect?: { kind: Kind; klass: ItemClass };
  /** Rows of one duplicated transaction: the later one is the duplicate. */
  dupOf?: string;
  raw?: string;
}

export interface Generated {
  readonly csv: string;
  readonly rows: number;
  /** row key → expected kind and class. */
  readonly expected: Map<string, { kind: Kind; klass: ItemClass }>;
  readonly perKind: Record<string, number>;
  readonly lateHeld: number;
  insert(knex: Knex): Promise<void>;
}

export function generate(seed: number, baseRows: number, breaksPerKind: number): Generated {
  const rnd = mulberry32(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  let n = 0;
  const id = (tag: string) => `${tag}_${seed}_${(n++).toString(36)}`;
  const auths: AuthRow[] = [];
  const replays: {
    authorization_id: string;
    transaction_id: string;
    shopper_id: string;
    amount_cents: number;
  }[] = [];
  const rows: FileRow[] = [];
  const neverSettled: { id: string; kind: Kind; klass: ItemClass }[] = [];
  const money = (c: number) => `${Math.floor(c / 100)}.${String(c % 100).padStart(2, '0')}`;
  const decided = () => T0 + int(0, DAY - 1);
  const settled = () => T0 + 2 * DAY + int(0, DAY - 1);
  const merchant = () => (rnd() < 0.1 ? '"SAFEWAY #1234, MAIN ST"' : 'SAFEWAY #1234');

  function auth(over: Partial<AuthRow> = {}): AuthRow {
    const amount = int(100, 30_000);
    const a: AuthRow = {
      authorization_id: id('auth'),
      transaction_id: id('txn'),
      shopper_id: `s${int(1, 5000)}`,
      decision: 'approved',
      mode: 'normal',
      amount_cents: amount,
      reversed_cents: 0,
      cleared_cents: amount,
      expired_cents: 0,
      expired_ms: null,
      late_ms: null,
      currency: 'USD',
      decided_ms: decided(),
      ...over,
    };
    auths.push(a);
    return a;
  }
  function row(a: AuthRow | undefined, over: Partial<FileRow> = {}): FileRow {
    const r: FileRow = {
      txn: a?.transaction_id ?? id('txn'),
      shopper: a?.shopper_id ?? `s${int(1, 5000)}`,
      merchant: merchant(),
      amount: money(a?.cleared_cents ?? a?.amount_cents ?? int(100, 30_000)),
      currency: a?.currency ?? 'USD',
      settledMs: settled(),
      type: a?.mode === 'fail_open' ? 'fail_open' : 'clearing',
      ...over,
    };
    rows.push(r);
    return r;
  }
  const k = breaksPerKind;
  const perKind: Record<string, number> = {};
  const count = (kind: string, m = 1) => {
    perKind[kind] = (perKind[kind] ?? 0) + m;
  };

  // Matches: cleared in full, cleared after a partial reversal, cleared fail-open approvals.
  for (let i = 0; i < baseRows; i++) {
    const r = rnd();
    if (r < 0.05) {
      const amount = int(1000, 30_000);
      const reversed = int(1, 900);
      row(
        auth({
          amount_cents: amount,
          reversed_cents: reversed,
          cleared_cents: amount - reversed - int(0, 50),
        }),
      );
    } else if (r < 0.07) row(auth({ mode: 'fail_open', amount_cents: 5000, cleared_cents: 5000 }));
    else row(auth());
  }
  const matched = rows.slice();
  const pickMatched = () => matched.splice(int(0, matched.length - 1), 1)[0] as FileRow;

  for (let i = 0; i < k; i++) {
    row(undefined, {
      type: 'stand_in',
      expect: { kind: 'settled_without_authorization', klass: 'auto_adjusted' },
    });
    row(undefined, {
      type: 'fail_open',
      expect: { kind: 'failopen_missing_from_wal', klass: 'auto_adjusted' },
    });
    const conflicted = auth({ decision: 'declined', cleared_cents: null, amount_cents: 4000 });
    replays.push({
      authorization_id: id('auth'),
      transaction_id: conflicted.transaction_id as string,
      shopper_id: conflicted.shopper_id,
      amount_cents: 4000,
    });
    row(conflicted, {
      type: 'fail_open',
      amount: '40.00',
      expect: { kind: 'failopen_conflict_settled', klass: 'auto_adjusted' },
    });
    const small = auth();
    row(small, {
      amount: money((small.cleared_cents as number) + (rnd() < 0.5 ? 50 : -50)),
      expect: { kind: 'amount_differs', klass: 'auto_adjusted' },
    });
    const large = auth();
    row(large, {
      amount: money((large.cleared_cents as number) + 1000),
      expect: { kind: 'amount_differs', klass: 'needs_review' },
    });
    const dup = pickMatched();
    rows.push({ ...dup, settledMs: settled(), dupOf: dup.txn });
    row(auth(), { currency: 'EUR', expect: { kind: 'currency_differs', klass: 'needs_review' } });
    row(auth({ cleared_cents: null }), { expect: { kind: 'clearing_missing', klass: 'needs_review' } });
    row(undefined, { expect: { kind: 'unknown_transaction', klass: 'unclassified' } });
    row(undefined, {
      raw: `${id('txn')},s1,SAFEWAY,12.345,USD,2026-11-03T10:00:00Z,clearing`,
      expect: { kind: 'malformed_row', klass: 'unclassified' },
    });
    // Never settled: cleared with us; held; held and answered late (released through Redis).
    neverSettled.push({
      id: auth().authorization_id,
      kind: 'authorized_never_settled',
      klass: 'needs_review',
    });
    neverSettled.push({
      id: auth({ cleared_cents: null }).authorization_id,
      kind: 'authorized_never_settled',
      klass: 'needs_review',
    });
    neverSettled.push({
      id: auth({ cleared_cents: null, late_ms: T0 + DAY }).authorization_id,
      kind: 'authorized_never_settled',
      klass: 'auto_adjusted',
    });
    count('duplicate_settlement');
  }
  for (let i = 0; i < Math.max(1, Math.floor(k / 5)); i++) {
    row(auth(), { shopper: 'someone-else', expect: { kind: 'shopper_differs', klass: 'needs_review' } });
    row(auth({ decision: 'declined', cleared_cents: null }), {
      expect: { kind: 'settled_declined_authorization', klass: 'needs_review' },
    });
    row(auth(), { type: 'stand_in', expect: { kind: 'stand_in_for_authorized', klass: 'unclassified' } });
  }
  // Noise that must not be flagged.
  for (let i = 0; i < k; i++) {
    const a = int(500, 5000);
    auth({ reversed_cents: a, amount_cents: a, cleared_cents: null }); // fully reversed
    auth({ cleared_cents: null, expired_cents: 700, expired_ms: T0 + 8 * DAY }); // expired
    auth({ decision: 'declined', cleared_cents: null }); // declined
    auth({ cleared_cents: null, decided_ms: T0 - 30 * DAY }); // before the window
    auth({ transaction_id: null, cleared_cents: null }); // no processor id: cannot settle by id
  }

  // Shuffle (seeded), number the rows, derive the expected items.
  for (let i = rows.length - 1; i > 0; i--) {
    const j = int(0, i);
    [rows[i], rows[j]] = [rows[j] as FileRow, rows[i] as FileRow];
  }
  const expected = new Map<string, { kind: Kind; klass: ItemClass }>();
  const seen = new Set<string>();
  const lines = ['transaction_id,shopper_id,merchant,amount,currency,settled_at,type'];
  rows.forEach((r, i) => {
    const rowNo = i + 1;
    lines.push(
      r.raw ??
        [
          r.txn,
          r.shopper,
          r.merchant,
          r.amount,
          r.currency,
          new Date(r.settledMs).toISOString(),
          r.type,
        ].join(','),
    );
    const firstOfTxn = !seen.has(r.txn);
    seen.add(r.txn);
    if (r.raw !== undefined) {
      expected.set(`row:${rowNo}`, r.expect as { kind: Kind; klass: ItemClass });
    } else if (!firstOfTxn) {
      expected.set(`row:${rowNo}`, { kind: 'duplicate_settlement', klass: 'needs_review' });
    } else if (r.expect !== undefined) {
      expected.set(`row:${rowNo}`, r.expect);
    }
  });
  for (const e of expected.values()) if (e.kind !== 'duplicate_settlement') count(e.kind);
  perKind['duplicate_settlement'] = k;
  for (const s of neverSettled) {
    expected.set(`auth:${s.id}`, { kind: s.kind, klass: s.klass });
    count(s.kind);
  }

  return {
    csv: `${lines.join('\n')}\n`,
    rows: rows.length,
    expected,
    perKind,
    lateHeld: k,
    async insert(knex: Knex) {
      for (let i = 0; i < auths.length; i += 10_000) {
        const chunk = auths.slice(i, i + 10_000).map((a, j) => ({
          ...a,
          event_id: `ev_${a.authorization_id}`,
          partition: (i + j) % 64,
          stream_id: `${a.decided_ms}-0`,
          idempotency_key: `t:${a.transaction_id ?? a.authorization_id}`,
          fingerprint: 'f',
          http_status: a.decision === 'approved' ? 200 : 402,
          reason: a.decision === 'approved' ? null : 'AMOUNT_EXCEEDS_ALLOWANCE',
          remaining_cents: 0,
          merchant_name: 'SAFEWAY #1234',
          merchant_address: '123 MAIN STREET',
        }));
        await knex.raw(
          `insert into authorizations (authorization_id, transaction_id, shopper_id, decision, reason, mode, amount_cents,
                  reversed_cents, cleared_cents, expired_cents, expired_ms, late_ms, currency, decided_ms, event_id,
                  partition, stream_id, idempotency_key, fingerprint, http_status, remaining_cents, merchant_name,
                  merchant_address)
           select x.* from json_to_recordset(?::json) as x(authorization_id text, transaction_id text, shopper_id text,
                  decision text, reason text, mode text, amount_cents bigint, reversed_cents bigint, cleared_cents bigint,
                  expired_cents bigint, expired_ms bigint, late_ms bigint, currency text, decided_ms bigint, event_id text,
                  partition int, stream_id text, idempotency_key text, fingerprint text, http_status int,
                  remaining_cents bigint, merchant_name text, merchant_address text)`,
          [JSON.stringify(chunk)],
        );
      }
      await knex.raw(
        `insert into failopen_replays (event_id, authorization_id, partition, stream_id, outcome, shopper_id,
                transaction_id, idempotency_key, amount_cents, decided_ms, replayed_ms)
         select 'ev_' || x.authorization_id, x.authorization_id, 0, '1-0', 'conflict', x.shopper_id, x.transaction_id,
                't:' || x.transaction_id, x.amount_cents, ?, ?
           from json_to_recordset(?::json) as x(authorization_id text, transaction_id text, shopper_id text, amount_cents bigint)`,
        [T0 + DAY, T0 + DAY, JSON.stringify(replays)],
      );
    },
  };
}
