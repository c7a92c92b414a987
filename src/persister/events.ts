// WAL events as read from a partition stream (docs/redis-layout.md, "WAL
// events"), parsed and checked again before they reach Postgres: the scripts
// assert before XADD, the persister asserts at persist. An entry that fails
// here is a poison event: it is retried up to persisterDeliveriesMax times,
// then dead-lettered (src/persister/deadLetters.ts).
import { createHash } from 'node:crypto';
import { WAL_DECIDED_FIELDS, WAL_FORMAT_COMPACT } from '../redis/walDecided.js';

export const EVENT_TYPES = [
  'trip.upserted',
  'item.updated',
  'trip.closed',
  'authorization.decided',
  'reversal.applied',
  'failopen.replayed',
  'clearing.posted',
  'clearing.flagged',
  'hold.expired',
  'authorization.late',
  'card.registered',
  'refund.recorded',
  'card.unknown_swipe',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** A stream entry exactly as read: fields may be missing on a malformed entry. */
export interface RawEntry {
  readonly partition: number;
  readonly streamId: string;
  readonly eventId: string | undefined;
  readonly type: string | undefined;
  readonly data: string | undefined;
  /** Field f: the payload's format; absent = a JSON object (WAL_FORMAT_COMPACT: decodeCompactPayload). */
  readonly format?: string | undefined;
}

export interface TripUpserted {
  readonly trip_id: string;
  readonly shopper_id: string;
  readonly currency: string;
  readonly merchant: {
    name: string;
    address: string;
    lat: number | string | null;
    lng: number | string | null;
  };
  readonly tax_rate_bps: number;
  readonly tolerance_bps: number;
  readonly tolerance_cents: number;
  readonly hold_cents: number | null;
  readonly estimated_cents: number;
  readonly orders: ReadonlyArray<{
    order_id: string;
    items: ReadonlyArray<{
      item_id: string;
      quantity_milli: number;
      unit: string | null;
      unit_price_cents: number;
      estimated_cents: number;
    }>;
  }>;
  readonly spec_hash?: string;
  readonly spec?: string;
  readonly at_ms: number;
}

export interface ItemUpdated {
  readonly trip_id: string;
  /** The trip's version (its created_ms in Redis): events move only that trip's totals; null in older events. */
  readonly trip_created_ms: number | null;
  readonly shopper_id: string;
  readonly item_id: string;
  readonly status: 'picked' | 'not_found' | 'replaced';
  readonly quantity_milli: number;
  readonly unit_price_cents: number;
  readonly line_cents: number;
  readonly replacement_item_id: string | null;
  readonly customer_approved: boolean;
  readonly picked_cents: number;
  readonly at_ms: number;
}

export interface TripClosed {
  readonly trip_id: string;
  readonly trip_created_ms: number | null;
  readonly shopper_id: string;
  readonly picked_cents: number;
  readonly authorized_cents: number;
  readonly at_ms: number;
}

export interface AuthorizationDecided {
  readonly authorization_id: string;
  readonly idempotency_key: string;
  readonly fingerprint: string;
  readonly signature: string | null;
  readonly status: number;
  readonly transaction_id: string | null;
  readonly shopper_id: string;
  readonly trip_id: string | null;
  readonly trip_created_ms: number | null;
  readonly decision: 'approved' | 'declined';
  readonly reason: string | null;
  readonly mode: string;
  readonly amount_cents: number;
  readonly remaining_cents: number;
  readonly authorized_cents: number | null;
  readonly currency: string;
  readonly merchant_name: string;
  readonly merchant_address: string;
  readonly lat: number | string | null;
  readonly lng: number | string | null;
  readonly at_ms: number;
  /** Processor swipes (CONTRACT §7); absent on the native webhook's decisions. */
  readonly requested_cents?: number | null;
  readonly processor?: string | null;
  readonly processor_card_id?: string | null;
  readonly processor_authorization_id?: string | null;
  readonly processor_request_id?: string | null;
}

/** lua/registerCard-2.lua: a processor card registered or retired (in the card's partition). */
export interface CardRegistered {
  readonly processor: string;
  readonly card_id: string;
  readonly shopper_id: string;
  readonly status: 'active' | 'retired';
  readonly owners: string;
  readonly at_ms: number;
}

/** A fail-open approval replayed from an api pod's journal (lua/replayFailOpen-4.lua). */
export interface FailopenReplayed extends AuthorizationDecided {
  readonly replay_outcome: 'applied' | 'already_decided' | 'conflict' | 'overridden';
  readonly replayed_ms: number;
  readonly redis_authorization_id: string | null;
  readonly redis_decision: string | null;
  readonly redis_reason: string | null;
}

export interface ReversalApplied {
  readonly reversal_key: string;
  readonly authorization_id: string;
  readonly transaction_id: string | null;
  readonly shopper_id: string;
  readonly trip_id: string | null;
  readonly trip_created_ms: number | null;
  readonly amount_cents: number;
  readonly reversed_cents: number;
  readonly held_cents: number;
  readonly authorized_cents: number | null;
  readonly requested?: string;
  /** The signature v1 the reversal was accepted with (hydrate rebuilds the endpoint's claim). */
  readonly signature?: string | null;
  readonly at_ms: number;
}

/** lua/clearAuthorization-3.lua */
export interface ClearingPosted {
  readonly authorization_id: string;
  readonly transaction_id: string;
  readonly shopper_id: string;
  readonly trip_id: string | null;
  readonly trip_created_ms: number | null;
  readonly currency: string;
  readonly amount_cents: number;
  readonly reversed_cents: number;
  /** Hold released now: what was still held (0 when the hold had expired). */
  readonly released_cents: number;
  readonly cleared_cents: number;
  readonly cleared_at_ms: number;
  readonly authorized_cents: number | null;
  /** The signature v1 the clearing was accepted with (hydrate rebuilds the endpoint's claim). */
  readonly signature: string | null;
  readonly at_ms: number;
}

/** lua/clearAuthorization-3.lua: a clearing that could not be applied, recorded for review. */
export interface ClearingFlagged {
  readonly authorization_id: string;
  readonly transaction_id: string;
  readonly shopper_id: string;
  readonly trip_id: string | null;
  readonly currency: string;
  readonly flag: 'above_authorized' | 'reversed_authorization' | 'not_approved';
  readonly amount_cents: number;
  readonly reversed_cents: number;
  readonly cleared_cents: number;
  readonly excess_cents: number;
  readonly cleared_at_ms: number;
  readonly at_ms: number;
}

/** lua/expireHold-3.lua */
export interface HoldExpired {
  readonly authorization_id: string;
  readonly transaction_id: string | null;
  readonly shopper_id: string;
  readonly trip_id: string | null;
  readonly trip_created_ms: number | null;
  readonly currency: string;
  readonly released_cents: number;
  readonly reason: 'expiry' | 'reconciliation';
  readonly redis_state: 'present' | 'missing';
  readonly authorized_cents: number | null;
  readonly at_ms: number;
}

/** lua/flagLate-2.lua */
export interface AuthorizationLate {
  readonly authorization_id: string;
  readonly transaction_id: string | null;
  readonly shopper_id: string;
  readonly trip_id: string | null;
  readonly amount_cents: number;
  readonly currency: string;
  readonly elapsed_ms: number;
  readonly deadline_ms: number;
  readonly at_ms: number;
}

interface Base {
  readonly partition: number;
  readonly streamId: string;
  /** Zero-padded stream id: compares as text in stream order. */
  readonly pos: string;
  readonly eventId: string;
}

export type WalEvent =
  | (Base & { readonly type: 'trip.upserted'; readonly d: TripUpserted })
  | (Base & { readonly type: 'item.updated'; readonly d: ItemUpdated })
  | (Base & { readonly type: 'trip.closed'; readonly d: TripClosed })
  | (Base & { readonly type: 'authorization.decided'; readonly d: AuthorizationDecided })
  | (Base & { readonly type: 'reversal.applied'; readonly d: ReversalApplied })
  | (Base & { readonly type: 'failopen.replayed'; readonly d: FailopenReplayed })
  | (Base & { readonly type: 'clearing.posted'; readonly d: ClearingPosted })
  | (Base & { readonly type: 'clearing.flagged'; readonly d: ClearingFlagged })
  | (Base & { readonly type: 'hold.expired'; readonly d: HoldExpired })
  | (Base & { readonly type: 'authorization.late'; readonly d: AuthorizationLate })
  | (Base & { readonly type: 'card.registered'; readonly d: CardRegistered })
  | (Base & { readonly type: 'refund.recorded'; readonly d: RefundRecorded })
  | (Base & { readonly type: 'card.unknown_swipe'; readonly d: UnknownCardSwiped });

export type ParseResult = { ok: true; event: WalEvent } | { ok: false; error: string };

/** "1700000000000-7" → "0001700000000000-0000000007": text order equals stream order. */
export function walPos(streamId: string): string {
  const dash = streamId.indexOf('-');
  if (dash <= 0) throw new EventError(`bad stream id ${streamId}`);
  return `${streamId.slice(0, dash).padStart(16, '0')}-${streamId.slice(dash + 1).padStart(10, '0')}`;
}

export class EventError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EventError';
  }
}

// --- field checks: each throws EventError naming the field -----------------

type Obj = Record<string, unknown>;
const ID_TEXT_MAX = 256;
const TEXT_MAX = 4096;
/** Cents and milli-quantities fit far below 2^53; anything above is a bug upstream. */
const AMOUNT_MAX = 1e15;

function obj(v: unknown, field: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new EventError(`${field} must be an object`);
  return v as Obj;
}
function str(o: Obj, field: string, max = ID_TEXT_MAX): string {
  const v = o[field];
  if (typeof v !== 'string' || v.length === 0 || v.length > max)
    throw new EventError(`${field} must be a non-empty string`);
  return v;
}
function strOrEmpty(o: Obj, field: string, max = TEXT_MAX): string {
  const v = o[field];
  if (typeof v !== 'string' || v.length > max) throw new EventError(`${field} must be a string`);
  return v;
}
function strOrNull(o: Obj, field: string, max = ID_TEXT_MAX): string | null {
  const v = o[field];
  // `false` is how a Lua nil (a missing HGET) reaches cjson: read it as null.
  if (v === null || v === undefined || v === '' || v === false) return null;
  if (typeof v !== 'string' || v.length > max) throw new EventError(`${field} must be a string or null`);
  return v;
}
function int(o: Obj, field: string, min = 0, max = AMOUNT_MAX): number {
  const v = o[field];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new EventError(`${field} must be an integer in [${min}, ${max}]`);
  }
  return v;
}
function intOrNull(o: Obj, field: string, min = 0, max = AMOUNT_MAX): number | null {
  const v = o[field];
  if (v === null || v === undefined) return null;
  return int(o, field, min, max);
}
/** trip_created_ms: absent in events written before trips carried their version. */
function tripVersion(o: Obj): number | null {
  const v = o['trip_created_ms'];
  if (v === null || v === undefined || v === false) return null;
  return int(o, 'trip_created_ms', 0, Number.MAX_SAFE_INTEGER);
}
function coord(o: Obj, field: string): number | string | null {
  const v = o[field];
  if (v === null || v === undefined || v === '') return null;
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && /^-?\d{1,3}(\.\d{1,12})?$/.test(v)) return v;
  throw new EventError(`${field} must be a coordinate or null`);
}
function oneOf<T extends string>(o: Obj, field: string, allowed: readonly T[]): T {
  const v = o[field];
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw new EventError(`${field} must be one of ${allowed.join(', ')}`);
  }
  return v as T;
}

/**
 * The trip's canonical spec as the api hashed it (src/trips/tripRequest.ts
 * canonicalSpec: JSON.stringify of the spec, whose fields the event carries
 * in the same order between trip_id/shopper_id/partition and at_ms). Kept so
 * hydrate restores spec and spec_hash, and an identical PUT stays a 200.
 */
function canonicalSpec(o: Obj): { spec: string; spec_hash: string } {
  if (typeof o.spec === 'string' && typeof o.spec_hash === 'string')
    return { spec: o.spec, spec_hash: o.spec_hash };
  const { trip_id: _t, shopper_id: _s, partition: _p, at_ms: _a, ...spec } = o;
  const json = JSON.stringify(spec);
  return { spec: json, spec_hash: createHash('sha256').update(json).digest('hex') };
}

const ORDERS_MAX = 500;
const ITEMS_MAX = 5000;

function tripUpserted(o: Obj): TripUpserted {
  const m = obj(o.merchant, 'merchant');
  const ordersRaw = o.orders;
  if (!Array.isArray(ordersRaw) || ordersRaw.length > ORDERS_MAX)
    throw new EventError('orders must be an array');
  let itemCount = 0;
  const orders = ordersRaw.map((or, i) => {
    const order = obj(or, `orders[${i}]`);
    const itemsRaw = order.items;
    if (!Array.isArray(itemsRaw)) throw new EventError(`orders[${i}].items must be an array`);
    itemCount += itemsRaw.length;
    if (itemCount > ITEMS_MAX) throw new EventError('too many items');
    return {
      order_id: str(order, 'order_id'),
      items: itemsRaw.map((it, j) => {
        const item = obj(it, `orders[${i}].items[${j}]`);
        return {
          item_id: str(item, 'item_id'),
          quantity_milli: int(item, 'quantity_milli'),
          unit: strOrNull(item, 'unit'),
          unit_price_cents: int(item, 'unit_price_cents'),
          estimated_cents: int(item, 'estimated_cents'),
        };
      }),
    };
  });
  const out: TripUpserted = {
    trip_id: str(o, 'trip_id'),
    shopper_id: str(o, 'shopper_id'),
    currency: str(o, 'currency', 3),
    merchant: {
      name: strOrEmpty(m, 'name'),
      address: strOrEmpty(m, 'address'),
      lat: coord(m, 'lat'),
      lng: coord(m, 'lng'),
    },
    tax_rate_bps: int(o, 'tax_rate_bps', 0, 100_000),
    tolerance_bps: int(o, 'tolerance_bps', 0, 100_000),
    tolerance_cents: int(o, 'tolerance_cents'),
    hold_cents: intOrNull(o, 'hold_cents'),
    estimated_cents: int(o, 'estimated_cents'),
    orders,
    at_ms: int(o, 'at_ms', 1),
    ...canonicalSpec(o),
  };
  return out;
}

function itemUpdated(o: Obj): ItemUpdated {
  const approved = o.customer_approved;
  if (typeof approved !== 'boolean') throw new EventError('customer_approved must be a boolean');
  return {
    trip_id: str(o, 'trip_id'),
    trip_created_ms: tripVersion(o),
    shopper_id: str(o, 'shopper_id'),
    item_id: str(o, 'item_id'),
    status: oneOf(o, 'status', ['picked', 'not_found', 'replaced'] as const),
    quantity_milli: int(o, 'quantity_milli'),
    unit_price_cents: int(o, 'unit_price_cents'),
    line_cents: int(o, 'line_cents'),
    replacement_item_id: strOrNull(o, 'replacement_item_id'),
    customer_approved: approved,
    picked_cents: int(o, 'picked_cents'),
    at_ms: int(o, 'at_ms', 1),
  };
}

function tripClosed(o: Obj): TripClosed {
  return {
    trip_id: str(o, 'trip_id'),
    trip_created_ms: tripVersion(o),
    shopper_id: str(o, 'shopper_id'),
    picked_cents: int(o, 'picked_cents'),
    authorized_cents: int(o, 'authorized_cents', -AMOUNT_MAX),
    at_ms: int(o, 'at_ms', 1),
  };
}

function authorizationDecided(o: Obj): AuthorizationDecided {
  const decision = oneOf(o, 'decision', ['approved', 'declined'] as const);
  const reason = strOrNull(o, 'reason', 64);
  if ((decision === 'approved') !== (reason === null))
    throw new EventError('reason must be null exactly when approved');
  return {
    authorization_id: str(o, 'authorization_id'),
    idempotency_key: str(o, 'idempotency_key'),
    fingerprint: str(o, 'fingerprint'),
    signature: strOrNull(o, 'signature'),
    status: int(o, 'status', 100, 599),
    transaction_id: strOrNull(o, 'transaction_id'),
    shopper_id: str(o, 'shopper_id'),
    trip_id: strOrNull(o, 'trip_id'),
    trip_created_ms: tripVersion(o),
    decision,
    reason,
    mode: str(o, 'mode', 32),
    amount_cents: int(o, 'amount_cents', 1),
    remaining_cents: int(o, 'remaining_cents', -AMOUNT_MAX),
    authorized_cents: intOrNull(o, 'authorized_cents', -AMOUNT_MAX),
    currency: str(o, 'currency', 3),
    merchant_name: strOrEmpty(o, 'merchant_name'),
    merchant_address: strOrEmpty(o, 'merchant_address'),
    lat: coord(o, 'lat'),
    lng: coord(o, 'lng'),
    at_ms: int(o, 'at_ms', 1),
    requested_cents: intOrNull(o, 'requested_cents'),
    processor: strOrNull(o, 'processor', 16),
    processor_card_id: strOrNull(o, 'processor_card_id'),
    processor_authorization_id: strOrNull(o, 'processor_authorization_id'),
    processor_request_id: strOrNull(o, 'processor_request_id'),
  };
}

function cardRegistered(o: Obj): CardRegistered {
  return {
    processor: oneOf(o, 'processor', ['stripe', 'marqeta', 'lithic'] as const),
    card_id: str(o, 'card_id'),
    shopper_id: str(o, 'shopper_id'),
    status: oneOf(o, 'status', ['active', 'retired'] as const),
    owners: strOrEmpty(o, 'owners', 1024),
    at_ms: int(o, 'at_ms', 1),
  };
}

function failopenReplayed(o: Obj): FailopenReplayed {
  const d = authorizationDecided(o);
  if (d.decision !== 'approved') throw new EventError('a fail-open replay is an approval');
  return {
    ...d,
    replay_outcome: oneOf(o, 'replay_outcome', [
      'applied',
      'already_decided',
      'conflict',
      'overridden',
    ] as const),
    replayed_ms: int(o, 'replayed_ms', 1),
    redis_authorization_id: strOrNull(o, 'redis_authorization_id'),
    redis_decision: strOrNull(o, 'redis_decision', 32),
    redis_reason: strOrNull(o, 'redis_reason', 64),
  };
}

function reversalApplied(o: Obj): ReversalApplied {
  return {
    reversal_key: str(o, 'reversal_key', 512),
    authorization_id: str(o, 'authorization_id'),
    transaction_id: strOrNull(o, 'transaction_id'),
    shopper_id: str(o, 'shopper_id'),
    trip_id: strOrNull(o, 'trip_id'),
    trip_created_ms: tripVersion(o),
    amount_cents: int(o, 'amount_cents', 1),
    reversed_cents: int(o, 'reversed_cents'),
    held_cents: int(o, 'held_cents'),
    authorized_cents: intOrNull(o, 'authorized_cents', -AMOUNT_MAX),
    at_ms: int(o, 'at_ms', 1),
    ...(typeof o.requested === 'string' ? { requested: o.requested } : {}),
    signature: optionalSignature(o),
  };
}

/** lua/recordRefund-2.lua: a processor's refund; null links mean it matched no authorization of ours. */
export interface RefundRecorded {
  readonly processor: string;
  readonly refund_id: string;
  readonly card_id: string;
  readonly shopper_id: string | null;
  readonly authorization_ref: string | null;
  readonly authorization_id: string | null;
  readonly transaction_id: string | null;
  readonly amount_cents: number;
  readonly currency: string;
  readonly refunded_at_ms: number;
  readonly at_ms: number;
}

function refundRecorded(o: Obj): RefundRecorded {
  return {
    processor: str(o, 'processor', 16),
    refund_id: str(o, 'refund_id'),
    // '' when the processor named no card: the refund is booked all the same (flagged).
    card_id: strOrEmpty(o, 'card_id', ID_TEXT_MAX),
    shopper_id: strOrNull(o, 'shopper_id'),
    authorization_ref: strOrNull(o, 'authorization_ref'),
    authorization_id: strOrNull(o, 'authorization_id'),
    transaction_id: strOrNull(o, 'transaction_id'),
    amount_cents: int(o, 'amount_cents', 1),
    currency: str(o, 'currency', 3),
    refunded_at_ms: int(o, 'refunded_at_ms', 1),
    at_ms: int(o, 'at_ms', 1),
  };
}

/** lua/recordUnknownCardSwipe-3.lua: a processor swipe on an unknown or retired card, answered UNKNOWN_SHOPPER. */
export interface UnknownCardSwiped {
  readonly processor: string;
  readonly request_id: string;
  readonly authorization_ref: string;
  readonly authorization_id: string;
  readonly card_id: string;
  readonly card_status: 'unknown' | 'retired';
  readonly amount_cents: number;
  readonly currency: string;
  readonly merchant_name: string;
  readonly merchant_mcc: string;
  readonly merchant_postal: string;
  readonly merchant_network_id: string;
  readonly decision: string;
  readonly reason: string;
  readonly at_ms: number;
}

function unknownCardSwiped(o: Obj): UnknownCardSwiped {
  const status = str(o, 'card_status', 16);
  if (status !== 'unknown' && status !== 'retired')
    throw new EventError('card_status must be unknown or retired');
  return {
    processor: str(o, 'processor', 16),
    request_id: str(o, 'request_id'),
    authorization_ref: strOrEmpty(o, 'authorization_ref'),
    authorization_id: str(o, 'authorization_id'),
    card_id: str(o, 'card_id'),
    card_status: status,
    amount_cents: int(o, 'amount_cents', 0),
    currency: strOrEmpty(o, 'currency', 3),
    merchant_name: strOrEmpty(o, 'merchant_name'),
    merchant_mcc: strOrEmpty(o, 'merchant_mcc', 8),
    merchant_postal: strOrEmpty(o, 'merchant_postal', 16),
    merchant_network_id: strOrEmpty(o, 'merchant_network_id', 64),
    decision: str(o, 'decision', 16),
    reason: str(o, 'reason', 32),
    at_ms: int(o, 'at_ms', 1),
  };
}

/** A signature v1 (64 hex) when the event carries one; older events have none. */
function optionalSignature(o: Obj): string | null {
  const v = o['signature'];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string' || !/^[0-9a-f]{64}$/.test(v))
    throw new EventError('signature must be 64 hex digits');
  return v;
}

function clearingPosted(o: Obj): ClearingPosted {
  const d: ClearingPosted = {
    authorization_id: str(o, 'authorization_id'),
    transaction_id: str(o, 'transaction_id'),
    shopper_id: str(o, 'shopper_id'),
    trip_id: strOrNull(o, 'trip_id'),
    trip_created_ms: tripVersion(o),
    currency: str(o, 'currency', 3),
    amount_cents: int(o, 'amount_cents', 1),
    reversed_cents: int(o, 'reversed_cents'),
    released_cents: int(o, 'released_cents'),
    cleared_cents: int(o, 'cleared_cents', 1),
    cleared_at_ms: int(o, 'cleared_at_ms', 1),
    authorized_cents: intOrNull(o, 'authorized_cents', -AMOUNT_MAX),
    signature: optionalSignature(o),
    at_ms: int(o, 'at_ms', 1),
  };
  if (d.released_cents > d.amount_cents - d.reversed_cents)
    throw new EventError('released_cents above what was held');
  return d;
}

function clearingFlagged(o: Obj): ClearingFlagged {
  return {
    authorization_id: str(o, 'authorization_id'),
    transaction_id: str(o, 'transaction_id'),
    shopper_id: str(o, 'shopper_id'),
    trip_id: strOrNull(o, 'trip_id'),
    currency: str(o, 'currency', 3),
    flag: oneOf(o, 'flag', ['above_authorized', 'reversed_authorization', 'not_approved'] as const),
    amount_cents: int(o, 'amount_cents', 1),
    reversed_cents: int(o, 'reversed_cents'),
    cleared_cents: int(o, 'cleared_cents', 1),
    excess_cents: int(o, 'excess_cents', 1),
    cleared_at_ms: int(o, 'cleared_at_ms', 1),
    at_ms: int(o, 'at_ms', 1),
  };
}

function holdExpired(o: Obj): HoldExpired {
  return {
    authorization_id: str(o, 'authorization_id'),
    transaction_id: strOrNull(o, 'transaction_id'),
    shopper_id: str(o, 'shopper_id'),
    trip_id: strOrNull(o, 'trip_id'),
    trip_created_ms: tripVersion(o),
    currency: str(o, 'currency', 3),
    released_cents: int(o, 'released_cents', 1),
    reason: oneOf(o, 'reason', ['expiry', 'reconciliation'] as const),
    redis_state: oneOf(o, 'redis_state', ['present', 'missing'] as const),
    authorized_cents: intOrNull(o, 'authorized_cents', -AMOUNT_MAX),
    at_ms: int(o, 'at_ms', 1),
  };
}

function authorizationLate(o: Obj): AuthorizationLate {
  return {
    authorization_id: str(o, 'authorization_id'),
    transaction_id: strOrNull(o, 'transaction_id'),
    shopper_id: str(o, 'shopper_id'),
    trip_id: strOrNull(o, 'trip_id'),
    amount_cents: int(o, 'amount_cents', 1),
    currency: str(o, 'currency', 3),
    elapsed_ms: int(o, 'elapsed_ms'),
    deadline_ms: int(o, 'deadline_ms'),
    at_ms: int(o, 'at_ms', 1),
  };
}

const EVENT_ID_MAX = 128;

/** Each event type's payload decoder (the `d` field, already parsed). */
const PAYLOAD_DECODERS: { readonly [T in EventType]: (o: Obj) => Extract<WalEvent, { type: T }>['d'] } = {
  'trip.upserted': tripUpserted,
  'item.updated': itemUpdated,
  'trip.closed': tripClosed,
  'authorization.decided': authorizationDecided,
  'reversal.applied': reversalApplied,
  'failopen.replayed': failopenReplayed,
  'clearing.posted': clearingPosted,
  'clearing.flagged': clearingFlagged,
  'hold.expired': holdExpired,
  'authorization.late': authorizationLate,
  'card.registered': cardRegistered,
  'refund.recorded': refundRecorded,
  'card.unknown_swipe': unknownCardSwiped,
};

/**
 * A parsed event as one whole object literal. Never `{ ...base, type, d }`: a spread followed by
 * more properties leaves V8 a dictionary-mode object, ~16x slower and 4-6x larger (the persister
 * makes one per WAL event).
 */
function parsedEvent<T extends WalEvent['type']>(
  raw: RawEntry,
  eventId: string,
  pos: string,
  type: T,
  d: Extract<WalEvent, { type: T }>['d'],
): ParseResult {
  return {
    ok: true,
    event: { partition: raw.partition, streamId: raw.streamId, pos, eventId, type, d } as WalEvent,
  };
}

/** Parses and checks one entry. Never throws: a bad entry comes back as { ok: false }. */
export function parseEntry(raw: RawEntry): ParseResult {
  try {
    if (raw.eventId === undefined || raw.eventId.length === 0 || raw.eventId.length > EVENT_ID_MAX) {
      throw new EventError('missing or bad event id (field e)');
    }
    if (raw.data === undefined) throw new EventError('missing payload (field d)');
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw.data);
    } catch {
      throw new EventError('payload is not valid JSON');
    }
    const o = raw.format === undefined ? obj(parsed, 'payload') : decodeCompactPayload(raw, parsed);
    const eventId = raw.eventId;
    const pos = walPos(raw.streamId);
    // Own properties only: a hostile type such as `constructor` is an unknown type, not a lookup.
    const type = raw.type as EventType;
    const decode = Object.hasOwn(PAYLOAD_DECODERS, type) ? PAYLOAD_DECODERS[type] : undefined;
    if (decode === undefined) throw new EventError(`unknown event type ${JSON.stringify(raw.type)}`);
    return parsedEvent(raw, eventId, pos, type, decode(o));
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}

/** A compact payload (format a1: authorization.decided's values as a JSON array) as the object it stands for. */
function decodeCompactPayload(raw: RawEntry, parsed: unknown): Obj {
  if (raw.format !== WAL_FORMAT_COMPACT || raw.type !== 'authorization.decided') {
    throw new EventError(
      `unknown payload format ${JSON.stringify(raw.format)} for ${JSON.stringify(raw.type)}`,
    );
  }
  if (!Array.isArray(parsed) || parsed.length !== WAL_DECIDED_FIELDS.length) {
    throw new EventError(`compact payload must be an array of ${WAL_DECIDED_FIELDS.length} values`);
  }
  return Object.fromEntries(WAL_DECIDED_FIELDS.map((name, i) => [name, parsed[i]]));
}

/** Stream entry fields ["e", id, "t", type, "d", json, ("f", format)] → RawEntry. */
export function rawEntry(partition: number, streamId: string, fields: readonly string[] | null): RawEntry {
  let eventId: string | undefined;
  let type: string | undefined;
  let data: string | undefined;
  let format: string | undefined;
  const list = fields ?? [];
  for (let i = 0; i + 1 < list.length; i += 2) {
    const k = list[i];
    const v = list[i + 1];
    if (k === 'e') eventId = v;
    else if (k === 't') type = v;
    else if (k === 'd') data = v;
    else if (k === 'f') format = v;
  }
  return { partition, streamId, eventId, type, data, ...(format === undefined ? {} : { format }) };
}
