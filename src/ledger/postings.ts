// The double-entry ledger (docs/ledger.md). Money moves between accounts;
// an entry's amount is signed: > 0 moves money into the account, < 0 out of
// it. Every posting's entries sum to zero (one currency per posting), so the
// whole table sums to zero per currency and any balance is a SUM.
//
// Accounts:
//   program_funding              where every approved cent comes from (goes negative)
//   card_holds:<shopper_id>      money held for a shopper's card (approved, not yet
//                                cleared, reversed or expired); entries carry the
//                                authorization id (a per-authorization sub-ledger)
//   merchant_settlement_payable  cleared amounts owed to merchants
//   failopen_exposure            fail-open approvals the processor got but Redis never
//                                counted (replay "conflict"), or that never reached the WAL
//   adjustments                  reconciliation's automatic corrections
import type { Knex } from '@mikro-orm/postgresql';
import type { WalEvent } from '../persister/events.js';

type Db = Knex | Knex.Transaction;

export const FUNDING = 'program_funding';
export const PAYABLE = 'merchant_settlement_payable';
export const EXPOSURE = 'failopen_exposure';
export const ADJUSTMENTS = 'adjustments';
export const FIXED_ACCOUNTS = [FUNDING, PAYABLE, EXPOSURE, ADJUSTMENTS] as const;
/** Currency of a posting whose authorization Postgres does not know (it still balances, and shows). */
export const UNKNOWN_CURRENCY = 'XXX';

export function cardHolds(shopperId: string): string {
  return `card_holds:${shopperId}`;
}

export type PostingKind =
  | 'authorization'
  | 'failopen_approval'
  | 'failopen_exposure'
  | 'reversal'
  | 'clearing'
  | 'hold_expiry'
  | 'adjustment';

export interface Line {
  readonly account: string;
  readonly amountCents: number;
  readonly authorizationId: string | null;
}

export interface Posting {
  /** The WAL event id, or recon:<kind>:<subject> for reconciliation adjustments. */
  readonly postingId: string;
  readonly kind: PostingKind;
  readonly authorizationId: string | null;
  readonly transactionId: string | null;
  readonly shopperId: string | null;
  /** null: the authorization's currency (reversal events do not carry one). */
  readonly currency: string | null;
  readonly eventMs: number;
  readonly lines: readonly Line[];
}

/** Money moves from one account to another: two entries. */
function move(from: string, to: string, cents: number, authorizationId: string | null): Line[] {
  if (cents === 0) return [];
  return [
    { account: from, amountCents: -cents, authorizationId },
    { account: to, amountCents: cents, authorizationId },
  ];
}

/**
 * The posting a WAL event makes (undefined: none). Callers pass only events
 * that had an effect now (their row was inserted), so each posts once.
 */
export function postingFor(e: WalEvent): Posting | undefined {
  const base = { postingId: e.eventId, eventMs: e.d.at_ms };
  switch (e.type) {
    case 'authorization.decided': {
      const d = e.d;
      if (d.decision !== 'approved') return undefined;
      return {
        ...base,
        kind: 'authorization',
        authorizationId: d.authorization_id,
        transactionId: d.transaction_id,
        shopperId: d.shopper_id,
        currency: d.currency,
        lines: move(FUNDING, cardHolds(d.shopper_id), d.amount_cents, d.authorization_id),
      };
    }
    case 'failopen.replayed': {
      const d = e.d;
      if (d.replay_outcome === 'already_decided') return undefined;
      const applied = d.replay_outcome === 'applied';
      return {
        ...base,
        kind: applied ? 'failopen_approval' : 'failopen_exposure',
        authorizationId: d.authorization_id,
        transactionId: d.transaction_id,
        shopperId: d.shopper_id,
        currency: d.currency,
        lines: move(
          FUNDING,
          applied ? cardHolds(d.shopper_id) : EXPOSURE,
          d.amount_cents,
          d.authorization_id,
        ),
      };
    }
    case 'reversal.applied': {
      const d = e.d;
      return {
        ...base,
        kind: 'reversal',
        authorizationId: d.authorization_id,
        transactionId: d.transaction_id,
        shopperId: d.shopper_id,
        currency: null,
        lines: move(cardHolds(d.shopper_id), FUNDING, d.amount_cents, d.authorization_id),
      };
    }
    case 'clearing.posted': {
      const d = e.d;
      return {
        ...base,
        kind: 'clearing',
        authorizationId: d.authorization_id,
        transactionId: d.transaction_id,
        shopperId: d.shopper_id,
        currency: d.currency,
        lines: [
          ...move(cardHolds(d.shopper_id), FUNDING, d.released_cents, d.authorization_id),
          ...move(FUNDING, PAYABLE, d.cleared_cents, d.authorization_id),
        ],
      };
    }
    case 'hold.expired': {
      const d = e.d;
      return {
        ...base,
        kind: 'hold_expiry',
        authorizationId: d.authorization_id,
        transactionId: d.transaction_id,
        shopperId: d.shopper_id,
        currency: d.currency,
        lines: move(cardHolds(d.shopper_id), FUNDING, d.released_cents, d.authorization_id),
      };
    }
    default:
      return undefined;
  }
}

/** A posting that does not balance is a programmer error: never written. */
export function assertBalanced(p: Posting): void {
  let sum = 0;
  for (const l of p.lines) {
    if (!Number.isSafeInteger(l.amountCents) || l.amountCents === 0)
      throw new Error(`posting ${p.postingId}: bad entry amount ${l.amountCents}`);
    sum += l.amountCents;
  }
  if (sum !== 0) throw new Error(`posting ${p.postingId} does not balance: ${sum}`);
}

async function rows<T>(db: Db, sql: string, data: readonly object[]): Promise<T[]> {
  if (data.length === 0) return [];
  const res = (await db.raw(sql, [JSON.stringify(data)])) as { rows: T[] };
  return res.rows;
}

/**
 * Writes postings in the caller's transaction, idempotent on posting id
 * (ON CONFLICT DO NOTHING: entries only for postings inserted now). Returns
 * the ids inserted now.
 */
export async function writePostings(db: Db, postings: readonly Posting[]): Promise<Set<string>> {
  const real = postings.filter((p) => p.lines.length > 0);
  for (const p of real) assertBalanced(p);
  if (real.length === 0) return new Set();
  // Card-holds accounts; the fixed accounts exist from the migration. Sorted: one lock order.
  const cards = [...new Set(real.flatMap((p) => p.lines.map((l) => l.account)))]
    .filter((a) => a.startsWith('card_holds:'))
    .sort();
  await rows(
    db,
    `insert into ledger_accounts (account_id, kind, shopper_id)
     select x.account_id, 'card_holds', substr(x.account_id, 12)
       from json_to_recordset(?::json) as x(account_id text)
     on conflict (account_id) do nothing`,
    cards.map((account_id) => ({ account_id })),
  );
  const inserted = await rows<{ posting_id: string; currency: string }>(
    db,
    `insert into ledger_postings (posting_id, kind, authorization_id, transaction_id, shopper_id, currency, event_ms)
     select x.posting_id, x.kind, x.authorization_id, x.transaction_id, x.shopper_id,
            coalesce(x.currency,
                     (select a.currency from authorizations a where a.authorization_id = x.authorization_id),
                     '${UNKNOWN_CURRENCY}'), x.event_ms
       from json_to_recordset(?::json) as x(posting_id text, kind text, authorization_id text, transaction_id text,
            shopper_id text, currency text, event_ms bigint)
     on conflict (posting_id) do nothing
     returning posting_id, currency`,
    real.map((p) => ({
      posting_id: p.postingId,
      kind: p.kind,
      authorization_id: p.authorizationId,
      transaction_id: p.transactionId,
      shopper_id: p.shopperId,
      currency: p.currency,
      event_ms: p.eventMs,
    })),
  );
  const currencyOf = new Map(inserted.map((r) => [r.posting_id, r.currency]));
  const entries: object[] = [];
  for (const p of real) {
    const currency = currencyOf.get(p.postingId);
    if (currency === undefined) continue;
    for (let i = 0; i < p.lines.length; i++) {
      const l = p.lines[i] as Line;
      entries.push({
        posting_id: p.postingId,
        line: i,
        account_id: l.account,
        currency,
        amount_cents: l.amountCents,
        authorization_id: l.authorizationId,
      });
    }
  }
  await rows(
    db,
    `insert into ledger_entries (posting_id, line, account_id, currency, amount_cents, authorization_id)
     select x.* from json_to_recordset(?::json) as x(posting_id text, line smallint, account_id text, currency text,
            amount_cents bigint, authorization_id text)`,
    entries,
  );
  return new Set(currencyOf.keys());
}
