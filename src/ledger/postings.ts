// The double-entry ledger (docs/ledger.md). Every movement of money is one
// transfer row: `amount_cents` (> 0) leave the debit account and arrive in the
// credit account, in one currency. A transfer balances by construction, so
// the ledger sums to zero per currency and any balance is a SUM (credits minus
// debits). The view `ledger_entries` shows each transfer as its two signed
// entries (> 0 into the account, < 0 out of it), the classic form; one row and
// three index entries per movement instead of three rows (posting, two
// entries) and six, because Postgres' cost here follows rows and index entries.
//
// Accounts:
//   program_funding              where every approved cent comes from (goes negative)
//   card_holds:<shopper_id>      money held for a shopper's card (approved, not yet
//                                cleared, reversed or expired); transfers carry the
//                                authorization id (a per-authorization sub-ledger)
//   merchant_settlement_payable  cleared amounts owed to merchants
//   failopen_exposure            fail-open approvals the processor got but Redis never
//                                counted (replay "conflict"), or that never reached the WAL
//   adjustments                  reconciliation's automatic corrections
import { type Db, jsonRows } from '../db/jsonRows.js';
import type { WalEvent } from '../persister/events.js';

export const FUNDING = 'program_funding';
export const PAYABLE = 'merchant_settlement_payable';
export const EXPOSURE = 'failopen_exposure';
export const ADJUSTMENTS = 'adjustments';
/** Currency of a posting whose authorization Postgres does not know (it still balances, and shows). */
export const UNKNOWN_CURRENCY = 'XXX';

const CARD_HOLDS_PREFIX = 'card_holds:';

export function cardHolds(shopperId: string): string {
  return `${CARD_HOLDS_PREFIX}${shopperId}`;
}

export type PostingKind =
  | 'authorization'
  | 'failopen_approval'
  | 'failopen_exposure'
  | 'reversal'
  | 'clearing'
  | 'hold_expiry'
  | 'refund'
  | 'adjustment';

/** `cents` (> 0) leave `from` (debited) and arrive in `to` (credited). */
export interface Transfer {
  readonly from: string;
  readonly to: string;
  readonly cents: number;
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
  /** In order: transfer i is line i of the posting. */
  readonly transfers: readonly Transfer[];
}

/**
 * Money moves from one account to another; a negative amount moves the other way, zero moves
 * nothing. Anything else (NaN, fractions) is kept, so that assertValid refuses the posting.
 */
export function move(from: string, to: string, cents: number): Transfer[] {
  if (cents === 0) return [];
  return cents < 0 ? [{ from: to, to: from, cents: -cents }] : [{ from, to, cents }];
}

/** The facts of a WAL event a posting carries; every event with a posting has them. */
interface PostingSource {
  readonly at_ms: number;
  readonly authorization_id: string | null;
  readonly transaction_id: string | null;
  readonly shopper_id: string | null;
}

/** One whole object literal per posting (one hidden class, see parsedEvent in src/persister/events.ts). */
function eventPosting(
  eventId: string,
  d: PostingSource,
  kind: PostingKind,
  currency: string | null,
  transfers: Transfer[],
): Posting {
  return {
    postingId: eventId,
    eventMs: d.at_ms,
    kind,
    authorizationId: d.authorization_id,
    transactionId: d.transaction_id,
    shopperId: d.shopper_id,
    currency,
    transfers,
  };
}

/**
 * The posting a WAL event makes (undefined: none). Callers pass only events
 * that had an effect now (their row was inserted), so each posts once.
 */
export function postingFor(e: WalEvent): Posting | undefined {
  switch (e.type) {
    case 'authorization.decided':
      return approvalPosting(e);
    case 'failopen.replayed':
      return failopenPosting(e);
    case 'reversal.applied':
      // Reversal events carry no currency: the authorization's (null) applies.
      return eventPosting(
        e.eventId,
        e.d,
        'reversal',
        null,
        move(cardHolds(e.d.shopper_id), FUNDING, e.d.amount_cents),
      );
    case 'clearing.posted': {
      const d = e.d;
      const transfers = [
        ...move(cardHolds(d.shopper_id), FUNDING, d.released_cents),
        ...move(FUNDING, PAYABLE, d.cleared_cents),
      ];
      return eventPosting(e.eventId, d, 'clearing', d.currency, transfers);
    }
    case 'hold.expired':
      return eventPosting(
        e.eventId,
        e.d,
        'hold_expiry',
        e.d.currency,
        move(cardHolds(e.d.shopper_id), FUNDING, e.d.released_cents),
      );
    case 'refund.recorded':
      // A refund reverses a spend: the merchant pays back what clearing made payable to it.
      return eventPosting(e.eventId, e.d, 'refund', e.d.currency, move(PAYABLE, FUNDING, e.d.amount_cents));
    default:
      return undefined;
  }
}

/** An approval holds its amount on the shopper's card. */
function approvalPosting(e: Extract<WalEvent, { type: 'authorization.decided' }>): Posting | undefined {
  const d = e.d;
  if (d.decision !== 'approved') return undefined;
  return eventPosting(
    e.eventId,
    d,
    'authorization',
    d.currency,
    move(FUNDING, cardHolds(d.shopper_id), d.amount_cents),
  );
}

/** A replayed fail-open approval: a hold when it counted, an exposure when the trip could not take it. */
function failopenPosting(e: Extract<WalEvent, { type: 'failopen.replayed' }>): Posting | undefined {
  const d = e.d;
  if (d.replay_outcome === 'already_decided') return undefined;
  // overridden: Redis's late decline of our own call was replaced by the approval given.
  const applied = d.replay_outcome === 'applied' || d.replay_outcome === 'overridden';
  const to = applied ? cardHolds(d.shopper_id) : EXPOSURE;
  return eventPosting(
    e.eventId,
    d,
    applied ? 'failopen_approval' : 'failopen_exposure',
    d.currency,
    move(FUNDING, to, d.amount_cents),
  );
}

/** A transfer that is not a positive safe integer between two accounts is a programmer error: never written. */
export function assertValid(p: Posting): void {
  for (const t of p.transfers) {
    if (!Number.isSafeInteger(t.cents) || t.cents <= 0)
      throw new Error(`posting ${p.postingId}: bad transfer amount ${t.cents}`);
    if (t.from === t.to) throw new Error(`posting ${p.postingId}: transfer from ${t.from} to itself`);
  }
}

/**
 * Card-holds accounts known to exist in Postgres (committed), so a batch need not upsert them
 * again. Accounts are never deleted; the set is bounded and starts over when full.
 */
export class KnownAccounts {
  private readonly known = new Set<string>();
  constructor(private readonly max = 100_000) {}

  has(account: string): boolean {
    return this.known.has(account);
  }

  /** Call only after the transaction that inserted them has committed. */
  addAll(accounts: Iterable<string>): void {
    for (const a of accounts) {
      if (this.known.size >= this.max) this.known.clear();
      this.known.add(a);
    }
  }
}

export interface WrittenPostings {
  /** Posting ids inserted now. */
  readonly posted: Set<string>;
  /** Card-holds accounts upserted by this call: remember them once the transaction commits. */
  readonly accounts: readonly string[];
}

/**
 * Writes postings in the caller's transaction, idempotent on (posting id, line):
 * a posting is written whole or, when it was written before, not at all (its
 * transfers are inserted together, in one statement).
 */
export async function writePostings(
  db: Db,
  postings: readonly Posting[],
  known?: KnownAccounts,
): Promise<WrittenPostings> {
  const real = postings.filter((p) => p.transfers.length > 0);
  for (const p of real) assertValid(p);
  if (real.length === 0) return { posted: new Set(), accounts: [] };
  // Card-holds accounts not known to exist; the fixed accounts exist from the migration.
  // Sorted: one lock order.
  const cards = new Set<string>();
  const isNew = (a: string) => a.startsWith(CARD_HOLDS_PREFIX) && known?.has(a) !== true;
  for (const p of real) {
    for (const t of p.transfers) {
      if (isNew(t.from)) cards.add(t.from);
      if (isNew(t.to)) cards.add(t.to);
    }
  }
  const accounts = [...cards].sort();
  await jsonRows(
    db,
    `insert into ledger_accounts (account_id, kind, shopper_id)
     select x.account_id, 'card_holds', substr(x.account_id, ${CARD_HOLDS_PREFIX.length + 1})
       from json_to_recordset(?::json) as x(account_id text)
     on conflict (account_id) do nothing`,
    accounts.map((account_id) => ({ account_id })),
  );
  const transfers: object[] = [];
  for (const p of real) {
    for (let line = 0; line < p.transfers.length; line++) {
      const t = p.transfers[line] as Transfer;
      transfers.push({
        posting_id: p.postingId,
        line,
        kind: p.kind,
        debit_account: t.from,
        credit_account: t.to,
        currency: p.currency,
        amount_cents: t.cents,
        authorization_id: p.authorizationId,
        transaction_id: p.transactionId,
        shopper_id: p.shopperId,
        event_ms: p.eventMs,
      });
    }
  }
  // A reversal event carries no currency: the authorization's, or XXX when Postgres does not know it.
  const inserted = await jsonRows<{ posting_id: string }>(
    db,
    `insert into ledger_transfers (posting_id, line, kind, debit_account, credit_account, currency, amount_cents,
            authorization_id, transaction_id, shopper_id, event_ms)
     select x.posting_id, x.line, x.kind, x.debit_account, x.credit_account,
            coalesce(x.currency,
                     (select a.currency from authorizations a where a.authorization_id = x.authorization_id),
                     '${UNKNOWN_CURRENCY}'),
            x.amount_cents, x.authorization_id, x.transaction_id, x.shopper_id, x.event_ms
       from json_to_recordset(?::json) as x(posting_id text, line smallint, kind text, debit_account text,
            credit_account text, currency text, amount_cents bigint, authorization_id text, transaction_id text,
            shopper_id text, event_ms bigint)
     on conflict (posting_id, line) do nothing
     returning posting_id`,
    transfers,
  );
  return { posted: new Set(inserted.map((r) => r.posting_id)), accounts };
}
