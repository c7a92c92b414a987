// One typed function per Lua script (BullMQ's habit): each builds its script's
// KEYS and positional ARGV in the order of the script's header and decodes its
// coded result (results.ts). Callers never assemble a script's arguments by
// hand, and a limit the script needs comes from Config here, in one place.
// Pipelined scripts (hydrateShopper, hydrateAuth) are queued by hydrate.
import { type ProcessorSwipeFields, processorScriptArgs } from '../processors/common/swipe.js';
import type { Config } from '../config/config.js';
import { uuidv7 } from '../domain/ids.js';
import type { SpanLike } from '../observability/tracing.js';
import type { Keys } from './keys.js';
import {
  type DecidedRequestValues,
  decidedPayloadPieces,
  WAL_FORMAT_COMPACT,
  type WalDecidedFormat,
} from './walDecided.js';
import {
  type AuthorizeResult,
  type ClearResult,
  type CloseTripResult,
  decodeReplayResult,
  decodeScriptResult,
  type ExpireHoldResult,
  type FlagLateResult,
  type ReplayResult,
  type ReverseResult,
  type TripView,
  type UpdateItemResult,
  type UpsertTripResult,
} from './results.js';
import type { ScriptRunner } from './scripts.js';

/** What every script function needs: the config (limits, TTLs), the key builder and the runner. */
export interface ScriptDeps {
  readonly config: Config;
  readonly keys: Keys;
  readonly scripts: ScriptRunner;
}

/** Lines of a trip's `:auths` list (newest first); GET trip shows at most this many. */
export const TRIP_AUTHORIZATIONS_KEPT = 200;
/** `max_swipes_per_minute` counts the trip's swipes in this window. */
export const VELOCITY_WINDOW_MS = 60_000;
export { WAL_FORMAT_COMPACT } from './walDecided.js';
/** authorizeSwipe's velocity window in the trip hash's `vel` field (lua/includes/velocity.lua). */
export const VELOCITY_IN_HASH = 'h';
/**
 * The most swipe times `vel` holds (lua/includes/velocity.lua parses them all on every swipe): a
 * higher limit keeps the :swipes sorted set, whose cost does not grow with it.
 */
export const VELOCITY_IN_HASH_SWIPES_MAX = 64;

/** Whether decisions and hydrate keep the velocity window in the trip hash's `vel` field. */
export function velocityInHash(config: Pick<Config, 'velocityInTripHash' | 'maxSwipesPerMinute'>): boolean {
  return config.velocityInTripHash && config.maxSwipesPerMinute <= VELOCITY_IN_HASH_SWIPES_MAX;
}

/**
 * The trip hash's `vel` field for these swipe times (ms), as lua/includes/velocity.lua writes it:
 * oldest first, the first in ms, each next as its difference from the one before.
 */
export function velocityField(timesMs: readonly number[]): string {
  const sorted = [...timesMs].sort((a, b) => a - b);
  return sorted.map((t, i) => String(i === 0 ? t : t - sorted[i - 1]!)).join(',');
}

/** A deadline and breaker around the Redis call only (decoding is not a Redis failure). */
export interface CallGuard {
  run<T>(fn: () => Promise<T>): Promise<T>;
}

export interface SwipeToDecide {
  readonly transactionId: string | undefined;
  readonly shopperId: string;
  readonly amountCents: number;
  readonly currency: string;
  readonly merchantName: string;
  readonly merchantAddress: string;
  readonly merchantNameNorm: string;
  readonly merchantAddressNorm: string;
  readonly lat: string;
  readonly lng: string;
  /** "t:<transaction_id>", "h:<Idempotency-Key>" or "d:<derived sha256>". */
  readonly idempotencyKey: string;
  /** Same key, different shopper/merchant/amount: IDEMPOTENCY_CONFLICT. */
  readonly fingerprint: string;
  /** Processor swipes (CONTRACT §7): §4b evidence, partial approval, the processor's ids. */
  readonly processor?: ProcessorSwipeFields | undefined;
}

const NO_PROCESSOR_REPLAY = ['', '', '', ''] as const;

/** Positions (0-based) in authorizeSwipeCall's args of what tests set themselves. */
export const AUTHORIZE_ARG = { velocityLayout: 23 } as const;

/** The moment and ids of one decision (authorizeSwipe's time, authorization id and signature). */
export interface DecisionAt {
  readonly nowMs: number;
  readonly authorizationId: string;
  readonly signature: string;
  /** The WAL event id; minted from nowMs when absent. */
  readonly eventId?: string;
  /**
   * The id was chosen for a swipe forwarded by another region (Request.regionAuthorizationId):
   * the script refuses it, writing nothing, when it already names a decision here.
   */
  readonly forwarded?: boolean;
}

/**
 * ARGV[25]: '' = no peer regions; 'r' = peers; 'rf' = the id came with a forward (the collision
 * check runs whatever this region's peer list says: a request over the channel is a peer's).
 */
function regionsArg(config: Config, at: DecisionAt): '' | 'r' | 'rf' {
  if (at.forwarded === true) return 'rf';
  return config.regions.peers.size > 0 ? 'r' : '';
}

/**
 * KEYS and ARGV of lua/authorizeSwipe-4.lua for one swipe: the only place that knows their order
 * (the bench's Redis-only driver and bare script server call it too, so their work is the service's).
 */
export function authorizeSwipeCall(
  d: Pick<ScriptDeps, 'config' | 'keys'>,
  swipe: SwipeToDecide,
  at: DecisionAt,
): { keys: string[]; args: (string | number)[] } {
  const { config, keys } = d;
  const p = keys.partition(swipe.shopperId);
  const walFormat: WalDecidedFormat = config.walCompactPayload ? WAL_FORMAT_COMPACT : '';
  return {
    keys: [
      keys.shopper(p, swipe.shopperId),
      keys.idem(p, swipe.idempotencyKey),
      keys.sig(p, at.signature === '' ? '-' : at.signature),
      keys.wal(p),
    ],
    // The order of lua/authorizeSwipe-4.lua's header.
    args: [
      at.nowMs,
      at.eventId ?? uuidv7(at.nowMs),
      at.authorizationId,
      swipe.shopperId,
      swipe.amountCents,
      swipe.currency,
      swipe.merchantNameNorm,
      swipe.merchantAddressNorm,
      swipe.lat,
      swipe.lng,
      swipe.fingerprint,
      swipe.idempotencyKey,
      swipe.transactionId ?? '',
      at.signature,
      config.tripTtlS * 1000,
      config.maxDistanceM,
      config.maxSwipesPerMinute,
      config.idempotencyTtlS,
      config.authorizationTtlS,
      2 * config.signatureToleranceS,
      TRIP_AUTHORIZATIONS_KEPT,
      VELOCITY_WINDOW_MS,
      walFormat,
      velocityInHash(config) ? VELOCITY_IN_HASH : '',
      regionsArg(config, at),
      ...decidedPayloadPieces(walFormat, decidedRequestValues(swipe, at)),
      ...processorScriptArgs(swipe.processor),
    ],
  };
}

/** authorization.decided's values known before the decision (src/redis/walDecided.ts). */
function decidedRequestValues(swipe: SwipeToDecide, at: DecisionAt): DecidedRequestValues {
  const p = swipe.processor;
  return {
    authorization_id: at.authorizationId,
    idempotency_key: swipe.idempotencyKey,
    fingerprint: swipe.fingerprint,
    signature: at.signature === '' ? null : at.signature,
    transaction_id:
      swipe.transactionId === undefined || swipe.transactionId === '' ? null : swipe.transactionId,
    shopper_id: swipe.shopperId,
    currency: swipe.currency,
    merchant_name: swipe.merchantName,
    merchant_address: swipe.merchantAddress,
    lat: coordinate(swipe.lat),
    lng: coordinate(swipe.lng),
    at_ms: at.nowMs,
    requested_cents: swipe.amountCents,
    processor: orNull(p?.processor),
    processor_card_id: orNull(p?.cardId),
    processor_authorization_id: orNull(p?.authorizationRef),
    processor_request_id: orNull(p?.requestId),
  };
}

const orNull = (v: string | undefined): string | null => (v === undefined || v === '' ? null : v);

/** A coordinate as the event carries it: a number, or null when not sent (or not a number). */
function coordinate(text: string): number | null {
  const n = text === '' ? Number.NaN : Number(text);
  return Number.isFinite(n) ? n : null;
}

/** lua/authorizeSwipe-4.lua: one swipe decided (or its earlier decision replayed). */
export async function authorizeSwipe(
  d: ScriptDeps,
  swipe: SwipeToDecide,
  at: DecisionAt,
  opts: { readonly span?: SpanLike; readonly guard?: CallGuard } = {},
): Promise<AuthorizeResult> {
  const { keys, args } = authorizeSwipeCall(d, swipe, at);
  const call = () => d.scripts.run('authorizeSwipe', keys, args, opts.span);
  const raw = await (opts.guard === undefined ? call() : opts.guard.run(call));
  return decodeScriptResult('authorizeSwipe', raw);
}

/** Seconds every key of a trip lives after its last activity. */
function tripKeyTtlS(config: Config): number {
  return config.tripTtlS + config.authorizationTtlS;
}

export interface TripToUpsert {
  readonly shopperId: string;
  readonly tripId: string;
  readonly nowMs: number;
  readonly specHash: string;
  /** Canonical spec JSON, stored for GET and the identical-PUT check. */
  readonly specJson: string;
  /** The trip.upserted event payload (JSON). */
  readonly event: string;
  readonly tripFields: readonly (readonly [string, string | number])[];
  /** item_id → item JSON of the trip's items hash. */
  readonly items: readonly (readonly [string, string])[];
}

/** lua/upsertTrip-4.lua: creates a shopper's trip, or confirms an identical one. */
export async function upsertTrip(d: ScriptDeps, t: TripToUpsert): Promise<UpsertTripResult> {
  const { config, keys } = d;
  const p = keys.partition(t.shopperId);
  const tripKey = keys.trip(p, t.shopperId, t.tripId);
  const raw = await d.scripts.run(
    'upsertTrip',
    [keys.shopper(p, t.shopperId), tripKey, `${tripKey}:items`, keys.wal(p)],
    [
      t.nowMs,
      uuidv7(t.nowMs),
      t.shopperId,
      t.tripId,
      t.specHash,
      t.specJson,
      config.tripTtlS * 1000,
      tripKeyTtlS(config),
      t.event,
      t.tripFields.length,
      ...t.tripFields.flat(),
      t.items.length,
      ...t.items.flat(),
    ],
  );
  return decodeScriptResult('upsertTrip', raw);
}

export interface PickToRecord {
  readonly shopperId: string;
  readonly tripId: string;
  readonly itemId: string;
  readonly nowMs: number;
  readonly status: 'picked' | 'not_found' | 'replaced';
  /** '' when not given (not_found). */
  readonly quantityMilli: number | '';
  /** '' = the ordered estimate. */
  readonly unitPriceCents: number | '';
  readonly replacementItemId: string;
  readonly customerApproved: boolean;
  readonly lineCentsMax: number;
}

/** lua/updateItem-4.lua: records one pick; a later pick of the same item replaces it. */
export async function updateItem(d: ScriptDeps, u: PickToRecord): Promise<UpdateItemResult> {
  const { config, keys } = d;
  const p = keys.partition(u.shopperId);
  const tripKey = keys.trip(p, u.shopperId, u.tripId);
  const raw = await d.scripts.run(
    'updateItem',
    [tripKey, `${tripKey}:items`, `${tripKey}:picks`, keys.wal(p)],
    [
      u.nowMs,
      uuidv7(u.nowMs),
      u.shopperId,
      u.tripId,
      u.itemId,
      u.status,
      u.quantityMilli,
      u.unitPriceCents,
      u.replacementItemId,
      u.customerApproved ? 1 : 0,
      config.maxOverpickBps,
      config.maxPriceVarianceBps,
      config.tripTtlS * 1000,
      tripKeyTtlS(config),
      u.lineCentsMax,
      config.maxOverpickApprovedBps,
    ],
  );
  return decodeScriptResult('updateItem', raw);
}

/** lua/closeTrip-2.lua: no more swipes on this trip. */
export async function closeTrip(
  d: ScriptDeps,
  shopperId: string,
  tripId: string,
  nowMs: number,
): Promise<CloseTripResult> {
  const p = d.keys.partition(shopperId);
  const raw = await d.scripts.run(
    'closeTrip',
    [d.keys.trip(p, shopperId, tripId), d.keys.wal(p)],
    [nowMs, uuidv7(nowMs), shopperId, tripId],
  );
  return decodeScriptResult('closeTrip', raw);
}

/** lua/readTrip-1.lua: the trip and its newest authorizations, undefined when it is not this shopper's. */
export async function readTrip(
  d: ScriptDeps,
  shopperId: string,
  tripId: string,
  authorizationsMax: number,
): Promise<TripView | undefined> {
  const p = d.keys.partition(shopperId);
  const raw = await d.scripts.run(
    'readTrip',
    [d.keys.trip(p, shopperId, tripId)],
    [shopperId, authorizationsMax, tripId],
  );
  return decodeScriptResult('readTrip', raw);
}

export interface ReversalToApply {
  readonly shopperId: string;
  readonly transactionId: string;
  /** The request's reversal_id, '-' when absent. */
  readonly reversalKey: string;
  /** Cents as text; '' = everything still held. */
  readonly amount: string;
  readonly signature: string;
  readonly nowMs: number;
}

/** lua/reverseAuthorization-3.lua: releases (part of) an approval's hold. */
export async function reverseAuthorization(d: ScriptDeps, r: ReversalToApply): Promise<ReverseResult> {
  const { config, keys } = d;
  const p = keys.partition(r.shopperId);
  const raw = await d.scripts.run(
    'reverseAuthorization',
    [keys.idem(p, `t:${r.transactionId}`), keys.reversal(p, r.transactionId, r.reversalKey), keys.wal(p)],
    [
      r.nowMs,
      uuidv7(r.nowMs),
      r.shopperId,
      r.transactionId,
      `${r.transactionId}:${r.reversalKey}`,
      r.amount,
      config.authorizationTtlS,
      r.signature,
    ],
  );
  return decodeScriptResult('reverseAuthorization', raw);
}

export interface ClearingToPost {
  readonly shopperId: string;
  readonly transactionId: string;
  readonly clearedCents: number;
  readonly clearedAtMs: number;
  /** '' = not given (the authorization's). */
  readonly currency: string;
  readonly signature: string;
  readonly nowMs: number;
}

/** lua/clearAuthorization-3.lua: the settled amount of an approval, once. */
export async function clearAuthorization(d: ScriptDeps, c: ClearingToPost): Promise<ClearResult> {
  const { config, keys } = d;
  const p = keys.partition(c.shopperId);
  const raw = await d.scripts.run(
    'clearAuthorization',
    [keys.idem(p, `t:${c.transactionId}`), keys.clearing(p, c.transactionId), keys.wal(p)],
    [
      c.nowMs,
      uuidv7(c.nowMs),
      c.shopperId,
      c.transactionId,
      c.clearedCents,
      c.clearedAtMs,
      c.currency,
      config.authorizationTtlS,
      c.signature,
    ],
  );
  return decodeScriptResult('clearAuthorization', raw);
}

export interface HoldToRelease {
  readonly authorization_id: string;
  readonly shopper_id: string;
  /** What Postgres says is still held (cents as text), used when Redis no longer has the authorization. */
  readonly held: string;
  readonly currency: string;
  readonly transaction_id: string | null;
}

/** lua/expireHold-3.lua: releases one authorization's hold (expiry or reconciliation). */
export async function expireHold(
  d: ScriptDeps,
  h: HoldToRelease,
  reason: 'expiry' | 'reconciliation',
  nowMs: number,
): Promise<ExpireHoldResult & { eventId: string }> {
  const { config, keys } = d;
  const p = keys.partition(h.shopper_id);
  const eventId = uuidv7(nowMs);
  const raw = await d.scripts.run(
    'expireHold',
    [keys.auth(p, h.authorization_id), keys.holdExpiry(p, h.authorization_id), keys.wal(p)],
    [
      nowMs,
      eventId,
      h.authorization_id,
      h.shopper_id,
      reason,
      h.held,
      h.currency,
      h.transaction_id ?? '',
      config.authorizationTtlS,
    ],
  );
  return { ...decodeScriptResult('expireHold', raw), eventId };
}

/** lua/flagLate-2.lua: an approval answered after the processor's deadline. */
export async function flagLate(
  d: Pick<ScriptDeps, 'keys' | 'scripts'>,
  shopperId: string,
  authorizationId: string,
  elapsedMs: number,
  deadlineMs: number,
  nowMs: number,
): Promise<FlagLateResult> {
  const p = d.keys.partition(shopperId);
  const raw = await d.scripts.run(
    'flagLate',
    [d.keys.auth(p, authorizationId), d.keys.wal(p)],
    [nowMs, uuidv7(nowMs), authorizationId, Math.round(elapsedMs), deadlineMs],
  );
  return decodeScriptResult('flagLate', raw);
}

/** A fail-open approval as the journal keeps it (src/failopen/journal.ts: FailOpenEntry). */
export interface FailOpenApproval {
  /** authorization id answered to the processor */
  readonly id: string;
  /** WAL event id of its failopen.replayed event: fixed here so every replay attempt uses the same one. */
  readonly ev: string;
  /** decision time, epoch ms */
  readonly at: number;
  readonly shopper: string;
  readonly amount: number;
  readonly remaining: number;
  readonly currency: string;
  /** idempotency key kind:key, and the request fingerprint */
  readonly idem: string;
  readonly fp: string;
  readonly txn: string;
  readonly mname: string;
  readonly maddr: string;
  readonly lat: string;
  readonly lng: string;
  /** Processor swipes (src/processors/): [processor, card id, processor authorization id, request id]. */
  readonly proc?: readonly [string, string, string, string];
  /** The signature id the swipe was accepted with (native webhook; absent in older entries): the replay claims it. */
  readonly sig?: string;
  /** The region whose Redis holds the shopper, when it is not this one (CONTRACT §8): replayed there. */
  readonly home?: string;
}

/**
 * lua/replayFailOpen-4.lua: one journal entry into Redis. requireIntact: defer while the
 * partition's state is not known intact (no meta).
 */
export async function replayFailOpen(
  deps: ScriptDeps,
  e: FailOpenApproval,
  nowMs: number,
  requireIntact: boolean,
): Promise<ReplayResult> {
  const { config, keys, scripts } = deps;
  const p = keys.partition(e.shopper);
  const raw = await scripts.run(
    'replayFailOpen',
    [keys.shopper(p, e.shopper), keys.idem(p, e.idem), `${keys.base(p)}fo:${e.id}`, keys.wal(p)],
    [
      nowMs,
      e.ev,
      e.id,
      e.shopper,
      e.amount,
      e.currency,
      e.fp,
      e.idem,
      e.txn,
      e.mname,
      e.maddr,
      e.lat,
      e.lng,
      e.at,
      e.remaining,
      config.tripTtlS * 1000,
      config.maxSwipesPerMinute,
      config.idempotencyTtlS,
      config.authorizationTtlS,
      requireIntact ? 1 : 0,
      TRIP_AUTHORIZATIONS_KEPT,
      ...(e.proc ?? NO_PROCESSOR_REPLAY),
      e.sig ?? '',
      2 * config.signatureToleranceS * 1000,
    ],
  );
  return decodeReplayResult(raw);
}

export interface TripToRebuild {
  readonly shopperId: string;
  readonly tripId: string;
  /** Its last touch + key TTL: the script rounds it up to the hour, as every trip key expires (lua/includes/trip.lua). */
  readonly expireAtMs: number;
  readonly fields: readonly (readonly [string, string | number])[];
  /** item_id / item JSON, item_id / pick JSON, score ms / authorization id. */
  readonly items: readonly string[];
  readonly picks: readonly string[];
  readonly swipes: readonly string[];
  /** Newest first. */
  readonly authorizationIds: readonly string[];
}

/** lua/hydrateTrip-5.lua: one trip's keys rebuilt from Postgres; false when the trip key exists. */
export async function hydrateTrip(
  d: Pick<ScriptDeps, 'keys' | 'scripts'>,
  t: TripToRebuild,
): Promise<boolean> {
  const p = d.keys.partition(t.shopperId);
  const tripKey = d.keys.trip(p, t.shopperId, t.tripId);
  const raw = await d.scripts.run(
    'hydrateTrip',
    [tripKey, `${tripKey}:items`, `${tripKey}:picks`, `${tripKey}:swipes`, `${tripKey}:auths`],
    [
      t.expireAtMs,
      t.fields.length,
      ...t.fields.flat(),
      t.items.length / 2,
      ...t.items,
      t.picks.length / 2,
      ...t.picks,
      t.swipes.length / 2,
      ...t.swipes,
      t.authorizationIds.length,
      ...t.authorizationIds,
    ],
  );
  return raw === 1;
}

/** lua/persisterLeaseRenew-1.lua: true while this consumer still holds the partition. */
export async function renewLease(runner: ScriptRunner, leaseKey: string, consumer: string, leaseMs: number) {
  return (await runner.run('persisterLeaseRenew', [leaseKey], [consumer, leaseMs])) === 1;
}

/** lua/persisterLeaseRelease-1.lua: lets go of the partition if this consumer holds it. */
export async function releaseLease(runner: ScriptRunner, leaseKey: string, consumer: string): Promise<void> {
  await runner.run('persisterLeaseRelease', [leaseKey], [consumer]);
}

// --- Processor cards and authorizations (CONTRACT §7; docs/processors.md) -------------

export type CardOutcome = 'registered' | 'identical' | 'other_shopper' | 'retired' | 'not_registered';
const CARD_OUTCOMES: readonly CardOutcome[] = [
  'registered',
  'identical',
  'other_shopper',
  'retired',
  'not_registered',
  'other_shopper',
];

/** lua/registerCard-2.lua: registers (put) or retires (delete) a processor card, in the card's partition. */
export async function registerCard(
  d: Pick<ScriptDeps, 'keys' | 'scripts'>,
  c: { processor: string; cardId: string; shopperId: string; op: 'put' | 'delete'; nowMs: number },
): Promise<CardOutcome> {
  const { keys } = d;
  const p = keys.cardPartition(c.processor, c.cardId);
  const raw = await d.scripts.run(
    'registerCard',
    [keys.card(p, c.processor, c.cardId), keys.wal(p)],
    [c.nowMs, uuidv7(c.nowMs), c.processor, c.cardId, c.shopperId, c.op],
  );
  const code = Array.isArray(raw) ? raw[0] : undefined;
  const outcome = typeof code === 'number' ? CARD_OUTCOMES[code] : undefined;
  if (outcome === undefined) throw new Error(`script registerCard returned ${JSON.stringify(raw)}`);
  return outcome;
}

export type CardLookup =
  | { readonly status: 'active'; readonly shopperId: string; readonly owners: readonly string[] }
  | { readonly status: 'retired'; readonly shopperId: string; readonly owners: readonly string[] }
  | { readonly status: 'unknown' }
  | { readonly status: 'not_ready' };

/** lua/lookupCard-2.lua: the card's shopper (one call in the card's slot). Errors propagate. */
export async function lookupCard(
  d: Pick<ScriptDeps, 'keys' | 'scripts'>,
  processor: string,
  cardId: string,
): Promise<CardLookup> {
  const { keys } = d;
  const p = keys.cardPartition(processor, cardId);
  const raw = await d.scripts.run('lookupCard', [keys.card(p, processor, cardId), keys.meta(p)], []);
  if (!Array.isArray(raw) || raw.length !== 3)
    throw new Error(`script lookupCard returned ${JSON.stringify(raw)}`);
  const [code, shopper, owners] = raw as [number, string, string];
  const earlier = owners === '' ? [] : owners.split(',');
  if (code === 0) return { status: 'active', shopperId: shopper, owners: earlier };
  if (code === 1) return { status: 'retired', shopperId: shopper, owners: earlier };
  if (code === 2) return { status: 'unknown' };
  if (code === 3) return { status: 'not_ready' };
  throw new Error(`script lookupCard returned code ${code}`);
}

/** lua/hydrateCard-1.lua: one card rebuilt from Postgres; false when Redis has it already. */
export async function hydrateCard(
  d: Pick<ScriptDeps, 'keys' | 'scripts'>,
  p: number,
  c: { processor: string; cardId: string; shopperId: string; status: string; owners: string; atMs: string },
): Promise<boolean> {
  const raw = await d.scripts.run(
    'hydrateCard',
    [d.keys.card(p, c.processor, c.cardId)],
    [c.shopperId, c.status, c.owners, c.atMs],
  );
  return raw === 1;
}

/** One approved decision on a processor authorization (lua/readProcessorAuths-1.lua). */
export interface ProcessorDecisionState {
  readonly authorization_id: string;
  readonly transaction_id: string;
  readonly amount_cents: number;
  readonly reversed_cents: number;
  readonly cleared: boolean;
  /** What the clearing posted (0 while not cleared). */
  readonly cleared_cents: number;
  readonly expired: boolean;
}

/** lua/readProcessorAuths-1.lua: a processor authorization's approved decisions, oldest first. */
export async function readProcessorAuths(
  d: Pick<ScriptDeps, 'keys' | 'scripts'>,
  shopperId: string,
  processor: string,
  authorizationRef: string,
): Promise<ProcessorDecisionState[]> {
  const p = d.keys.partition(shopperId);
  const suffix = `pref:${processor}:${authorizationRef}`;
  const raw = await d.scripts.run('readProcessorAuths', [`${d.keys.base(p)}${suffix}`], [shopperId, suffix]);
  if (typeof raw !== 'string') throw new Error(`script readProcessorAuths returned ${JSON.stringify(raw)}`);
  return JSON.parse(raw) as ProcessorDecisionState[];
}

/** A processor's refund, as src/processors/common/events.ts matched it (lua/recordRefund-2.lua). */
export interface RefundToRecord {
  readonly processor: string;
  /** The processor's id of the refund (Stripe ipi_…, Lithic event token, Marqeta token): the idempotency key. */
  readonly refundId: string;
  readonly cardId: string;
  /** The card's owner; null when the card is unknown (recorded in the card's partition). */
  readonly shopperId: string | null;
  readonly authorizationRef: string | null;
  /** Our authorization the refund names, when one matched; null: flagged for finance. */
  readonly authorizationId: string | null;
  readonly transactionId: string | null;
  readonly amountCents: number;
  readonly currency: string;
  readonly refundedAtMs: number;
  readonly nowMs: number;
}

/** lua/recordRefund-2.lua: 'recorded' now, or 'replay' of a refund id already recorded. */
export async function recordRefund(d: ScriptDeps, r: RefundToRecord): Promise<'recorded' | 'replay'> {
  const { config, keys } = d;
  const p = r.shopperId === null ? keys.cardPartition(r.processor, r.cardId) : keys.partition(r.shopperId);
  const eventId = uuidv7(r.nowMs);
  const payload = JSON.stringify({
    processor: r.processor,
    refund_id: r.refundId,
    card_id: r.cardId,
    shopper_id: r.shopperId,
    authorization_ref: r.authorizationRef,
    authorization_id: r.authorizationId,
    transaction_id: r.transactionId,
    amount_cents: r.amountCents,
    currency: r.currency,
    refunded_at_ms: r.refundedAtMs,
    at_ms: r.nowMs,
  });
  const raw = await d.scripts.run(
    'recordRefund',
    [`${keys.base(p)}rfd:${r.processor}:${r.refundId}`, keys.wal(p)],
    [eventId, config.authorizationTtlS, payload],
  );
  if (raw !== 0 && raw !== 1) throw new Error(`script recordRefund returned ${JSON.stringify(raw)}`);
  return raw === 0 ? 'recorded' : 'replay';
}

/** A processor swipe on a card we do not know or that was retired, answered UNKNOWN_SHOPPER. */
export interface UnknownCardSwipe {
  readonly processor: string;
  readonly cardId: string;
  /** 'unknown' (never registered) or 'retired'. */
  readonly cardStatus: 'unknown' | 'retired';
  /** The processor's id of this request (the idempotency key) and of its authorization. */
  readonly requestId: string;
  readonly authorizationRef: string;
  /** The id our answer carried (derived from the request: a retry gets the same). */
  readonly authorizationId: string;
  readonly amountCents: number;
  readonly currency: string;
  readonly merchantName: string;
  readonly merchantMcc: string;
  readonly merchantPostal: string;
  readonly merchantNetworkId: string;
  readonly nowMs: number;
}

/** How long a recorded request's marker answers its retries; Postgres dedupes after that. */
const UNKNOWN_CARD_MARKER_TTL_S = 3600;
const UNKNOWN_CARD_WINDOW_S = 60;

/**
 * lua/recordUnknownCardSwipe-3.lua, in the card's partition: 'recorded', 'replay' of a request
 * recorded before, or 'dropped' over the per-partition cap (recordsPerMinute; 0 records none).
 */
export async function recordUnknownCardSwipe(
  d: Pick<ScriptDeps, 'keys' | 'scripts'>,
  s: UnknownCardSwipe,
  recordsPerMinute: number,
): Promise<'recorded' | 'replay' | 'dropped'> {
  const { keys } = d;
  const p = keys.cardPartition(s.processor, s.cardId);
  const eventId = uuidv7(s.nowMs);
  const payload = JSON.stringify({
    processor: s.processor,
    request_id: s.requestId,
    authorization_ref: s.authorizationRef,
    authorization_id: s.authorizationId,
    card_id: s.cardId,
    card_status: s.cardStatus,
    amount_cents: s.amountCents,
    currency: s.currency,
    // Bounded like every stored text (the adapters bound ids; descriptors are ≤ 25 on the networks).
    merchant_name: s.merchantName.slice(0, 128),
    merchant_mcc: s.merchantMcc.slice(0, 8),
    merchant_postal: s.merchantPostal.slice(0, 16),
    merchant_network_id: s.merchantNetworkId.slice(0, 64),
    decision: 'declined',
    reason: 'UNKNOWN_SHOPPER',
    at_ms: s.nowMs,
  });
  const base = keys.base(p);
  const window = Math.floor(s.nowMs / 1000 / UNKNOWN_CARD_WINDOW_S);
  const raw = await d.scripts.run(
    'recordUnknownCardSwipe',
    [`${base}ucs:${s.processor}:${s.requestId}`, `${base}ucs-n:${window}`, keys.wal(p)],
    [eventId, UNKNOWN_CARD_MARKER_TTL_S, recordsPerMinute, UNKNOWN_CARD_WINDOW_S, payload],
  );
  if (raw === 0) return 'recorded';
  if (raw === 1) return 'replay';
  if (raw === 2) return 'dropped';
  throw new Error(`script recordUnknownCardSwipe returned ${JSON.stringify(raw)}`);
}
