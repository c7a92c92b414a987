// A processor's later events (CONTRACT §7) mapped onto the existing paths of §2 and hold
// expiry: reversal (lua/reverseAuthorization-3.lua), clearing (lua/clearAuthorization-3.lua)
// and hold expiry (lua/expireHold-3.lua). An event names the processor's authorization;
// its approved decisions (one, or more after incremental requests) come from
// <base>pref:<processor>:<id> in the card owner's partition (lua/readProcessorAuths-1.lua).
import type { Config } from '../../config/config.js';
import { UNKNOWN_CURRENCY } from '../../ledger/postings.js';
import type { Logger } from '../../observability/logger.js';
import type { Keys } from '../../redis/keys.js';
import {
  clearAuthorization,
  expireHold,
  lookupCard,
  recordRefund,
  type ProcessorDecisionState,
  readProcessorAuths,
  reverseAuthorization,
} from '../../redis/commands.js';
import type { ScriptRunner } from '../../redis/scripts.js';
import type { ProcessorName } from './swipe.js';

export type EventAction =
  | { readonly kind: 'release'; readonly amountCents: number | 'all' }
  | { readonly kind: 'clear'; readonly amountCents: number; readonly clearedAtMs: number }
  | { readonly kind: 'expire' }
  | {
      readonly kind: 'refund';
      readonly amountCents: number;
      /** ISO 4217 upper case; '' when the processor did not say. */
      readonly currency: string;
      readonly refundedAtMs: number;
    }
  | { readonly kind: 'ignore'; readonly why: string };

export interface ProcessorEvent {
  readonly processor: ProcessorName;
  readonly cardId: string;
  readonly authorizationRef: string;
  /** The processor's id of this event: the reversal id (a redelivery is a replay). */
  readonly eventId: string;
  readonly action: EventAction;
}

type Decision = ProcessorDecisionState;

export type EventOutcome =
  | 'released'
  | 'cleared'
  | 'expired'
  | 'refunded'
  | 'refund_replayed'
  | 'ignored'
  | 'unknown_card'
  | 'unknown_authorization'
  | 'conflict';

export interface EventDeps {
  readonly config: Config;
  readonly keys: Keys;
  readonly scripts: ScriptRunner;
  readonly logger: Logger;
  readonly now?: () => number;
}

const held = (d: Decision) => (d.cleared || d.expired ? 0 : d.amount_cents - d.reversed_cents);

/** What the steps below share: the stores, the config and the clock. */
interface ApplierContext {
  readonly store: { readonly config: Config; readonly keys: Keys; readonly scripts: ScriptRunner };
  readonly now: () => number;
}

type Found = { readonly shopperId: string; readonly list: readonly Decision[] };

/** The card's owner (or an earlier owner) and its decisions on the event's authorization. */
async function decisionsOf(ctx: ApplierContext, e: ProcessorEvent): Promise<Found | undefined> {
  const { keys, scripts } = ctx.store;
  const card = await lookupCard({ keys, scripts }, e.processor, e.cardId);
  if (card.status === 'not_ready') throw new Error('card partition not hydrated');
  if (card.status === 'unknown') return undefined;
  for (const shopperId of [card.shopperId, ...card.owners]) {
    const list = await readProcessorAuths({ keys, scripts }, shopperId, e.processor, e.authorizationRef);
    if (list.length > 0) return { shopperId, list };
  }
  return { shopperId: card.shopperId, list: [] };
}

async function reverse(
  ctx: ApplierContext,
  shopperId: string,
  d: Decision,
  amount: number | '',
  reversalId: string,
) {
  return reverseAuthorization(ctx.store, {
    shopperId,
    transactionId: d.transaction_id,
    reversalKey: reversalId,
    amount: amount === '' ? '' : String(amount),
    // Processor events are not §1-signed requests: no signature to bind to one endpoint.
    signature: '',
    nowMs: ctx.now(),
  });
}

async function clear(
  ctx: ApplierContext,
  shopperId: string,
  d: Decision,
  amount: number,
  clearedAtMs: number,
) {
  return clearAuthorization(ctx.store, {
    shopperId,
    transactionId: d.transaction_id,
    clearedCents: amount,
    clearedAtMs,
    currency: '',
    signature: '',
    nowMs: ctx.now(),
  });
}

/**
 * A refund is recorded whatever it matches (docs/processors.md "Refunds"): linked to the
 * authorization it names when we know it, else flagged for finance by its null link.
 */
async function refund(
  ctx: ApplierContext,
  e: ProcessorEvent,
  r: Extract<EventAction, { kind: 'refund' }>,
): Promise<EventOutcome> {
  const found = await decisionsOf(ctx, e);
  const decision = found?.list[0];
  const outcome = await recordRefund(ctx.store, {
    processor: e.processor,
    refundId: e.eventId,
    cardId: e.cardId,
    shopperId: found?.shopperId ?? null,
    authorizationRef: e.authorizationRef === '' ? null : e.authorizationRef,
    authorizationId: decision?.authorization_id ?? null,
    transactionId: decision?.transaction_id ?? null,
    amountCents: r.amountCents,
    currency: r.currency === '' ? UNKNOWN_CURRENCY : r.currency,
    refundedAtMs: r.refundedAtMs,
    nowMs: ctx.now(),
  });
  return outcome === 'recorded' ? 'refunded' : 'refund_replayed';
}

/** Newest decision first: an amount lowered undoes the latest increment first. */
async function release(
  ctx: ApplierContext,
  { shopperId, list }: Found,
  amountCents: number | 'all',
  reversalId: string,
): Promise<EventOutcome> {
  let conflict = false;
  let left = amountCents === 'all' ? Number.POSITIVE_INFINITY : amountCents;
  for (const d of [...list].reverse()) {
    const h = held(d);
    if (h <= 0 || left <= 0) continue;
    const take = Math.min(h, left);
    const r = await reverse(ctx, shopperId, d, take === h ? '' : take, reversalId);
    if (!r.ok) conflict = true;
    left -= take;
  }
  return conflict ? 'conflict' : 'released';
}

/**
 * Oldest first, each decision up to what it holds; the last open one takes the rest (a
 * clearing may exceed the hold by the trip's slack). Decisions left with nothing to clear
 * are released.
 */
async function clearInOrder(
  ctx: ApplierContext,
  { shopperId, list }: Found,
  action: Extract<EventAction, { kind: 'clear' }>,
  reversalId: string,
): Promise<EventOutcome> {
  let conflict = false;
  // A clearing already posted on this authorization: a redelivery of the same amount is a
  // replay (it only finishes releasing what an interrupted first delivery left held);
  // another amount is a second clearing we cannot post (logged as a conflict). Never clear
  // a decision the first one released: that would count the clearing twice.
  const done = list.filter((d) => d.cleared);
  if (done.length > 0) {
    const posted = done.reduce((sum, d) => sum + d.cleared_cents, 0);
    if (posted !== action.amountCents) return 'conflict';
    for (const d of list) {
      if (held(d) <= 0) continue;
      const r = await reverse(ctx, shopperId, d, '', reversalId);
      if (!r.ok) conflict = true;
    }
    return conflict ? 'conflict' : 'cleared';
  }
  const open = list;
  let left = action.amountCents;
  for (let i = 0; i < open.length; i++) {
    const d = open[i] as Decision;
    const last = i === open.length - 1;
    const share = last ? left : Math.min(held(d), left);
    if (share > 0) {
      const r = await clear(ctx, shopperId, d, share, action.clearedAtMs);
      if (!r.ok) conflict = true;
      left -= share;
    } else if (held(d) > 0) {
      const r = await reverse(ctx, shopperId, d, '', reversalId);
      if (!r.ok) conflict = true;
    }
  }
  return conflict ? 'conflict' : 'cleared';
}

async function expireAll(ctx: ApplierContext, { shopperId, list }: Found): Promise<EventOutcome> {
  for (const d of list) {
    if (held(d) <= 0) continue;
    await expireHold(
      ctx.store,
      {
        authorization_id: d.authorization_id,
        shopper_id: shopperId,
        currency: '',
        transaction_id: d.transaction_id,
        held: String(held(d)),
      },
      'expiry',
      ctx.now(),
    );
  }
  return 'expired';
}

/** Applies one event. Redis errors propagate (the route answers 503 and the processor redelivers). */
async function applyEvent(ctx: ApplierContext, e: ProcessorEvent): Promise<EventOutcome> {
  const action = e.action;
  if (action.kind === 'ignore') return 'ignored';
  if (action.kind === 'refund') return refund(ctx, e, action);
  const found = await decisionsOf(ctx, e);
  if (found === undefined) return 'unknown_card';
  if (found.list.length === 0) return 'unknown_authorization';
  const reversalId = `${e.processor}:${e.eventId}`;
  if (action.kind === 'release') return release(ctx, found, action.amountCents, reversalId);
  if (action.kind === 'clear') return clearInOrder(ctx, found, action, reversalId);
  return expireAll(ctx, found);
}

export function createEventApplier(deps: EventDeps) {
  const { config, keys, scripts, logger } = deps;
  const ctx: ApplierContext = { store: { config, keys, scripts }, now: deps.now ?? Date.now };
  const apply = (e: ProcessorEvent): Promise<EventOutcome> => applyEvent(ctx, e);

  async function applyAll(events: readonly ProcessorEvent[]): Promise<EventOutcome[]> {
    const out: EventOutcome[] = [];
    for (const e of events) {
      const outcome = await apply(e);
      if (outcome === 'conflict' || outcome === 'unknown_authorization' || outcome === 'unknown_card')
        logger.warn(
          { processor: e.processor, event: e.eventId, authorization: e.authorizationRef, outcome },
          'processor event not applied',
        );
      out.push(outcome);
    }
    return out;
  }

  return { apply, applyAll };
}

export type EventApplier = ReturnType<typeof createEventApplier>;
