// Applies parsed WAL events to Postgres inside the caller's transaction, set
// at a time: one multi-row statement per table (json_to_recordset keeps the
// bind count at one per statement whatever the batch size).
//
// Exactly-once in effect: every event first claims its id (INSERT .. ON
// CONFLICT DO NOTHING RETURNING); only events whose claim succeeded have an
// effect. An authorization.decided event is claimed by its own authorizations
// row (keyed by the authorization id made in the same script call as the
// event: one per decision); every other type by a processed_events row.
// Totals carried by events are "after" values and are written only when the
// event is newer (WAL position) than what the row already holds; increments
// (approved, reversed) come only from freshly inserted rows. So redelivery,
// reordering after a retry, or two persisters briefly sharing a partition
// never double-count.
import { type Db, jsonRows } from '../db/jsonRows.js';
import { type KnownAccounts, type Posting, postingFor, writePostings } from '../ledger/postings.js';
import {
  type AuthorizationDecided,
  EventError,
  type EventType,
  type ItemUpdated,
  type ReversalApplied,
  type TripUpserted,
  type WalEvent,
} from './events.js';

type Ev<T extends EventType> = Extract<WalEvent, { type: T }>;

export interface ApplyResult {
  /** Events that had an effect now, by type (duplicates excluded). */
  readonly applied: Record<string, number>;
  readonly duplicates: number;
  /** Card-holds accounts this transaction created or confirmed; known once it commits. */
  readonly accounts: readonly string[];
}

function coordText(v: number | string | null): string | null {
  return v === null ? null : String(v);
}

/** Events split by type in one pass (in stream order within each type). */
class ByType {
  private readonly m = new Map<EventType, WalEvent[]>();
  constructor(events: readonly WalEvent[]) {
    for (const e of events) {
      const list = this.m.get(e.type);
      if (list === undefined) this.m.set(e.type, [e]);
      else list.push(e);
    }
  }
  of<T extends EventType>(type: T): Ev<T>[] {
    return (this.m.get(type) ?? []) as Ev<T>[];
  }
}

/** Keeps the first (in the order given: stream order) event per key. */
function firstBy<E extends WalEvent>(events: readonly E[], key: (e: E) => string): E[] {
  const m = new Map<string, E>();
  for (const e of events) if (!m.has(key(e))) m.set(key(e), e);
  return [...m.values()];
}

/** Keeps the newest (by WAL position) event per key. */
function newestBy<E extends WalEvent>(events: readonly E[], key: (e: E) => string): E[] {
  const m = new Map<string, E>();
  for (const e of events) {
    const prev = m.get(key(e));
    if (prev === undefined || prev.pos < e.pos) m.set(key(e), e);
  }
  return [...m.values()];
}

async function claimEventIds(db: Db, events: readonly WalEvent[]): Promise<Set<string>> {
  const inserted = await jsonRows<{ event_id: string }>(
    db,
    `insert into processed_events (event_id, partition, stream_id, type)
     select x.event_id, x.partition, x.stream_id, x.type
       from json_to_recordset(?::json) as x(event_id text, partition int, stream_id text, type text)
     on conflict (event_id) do nothing
     returning event_id`,
    events.map((e) => ({ event_id: e.eventId, partition: e.partition, stream_id: e.streamId, type: e.type })),
  );
  return new Set(inserted.map((r) => r.event_id));
}

/** One trip: (shopper_id, trip_id) (CONTRACT §3). */
function tripKey(d: { shopper_id: string; trip_id: string }): string {
  return `${d.shopper_id}\u0000${d.trip_id}`;
}

/** A trip.upserted event as a trips row (json_to_recordset's input). */
function tripRow(e: Ev<'trip.upserted'>) {
  const d: TripUpserted = e.d;
  return {
    trip_id: d.trip_id,
    shopper_id: d.shopper_id,
    partition: e.partition,
    currency: d.currency,
    merchant_name: d.merchant.name,
    merchant_address: d.merchant.address,
    merchant_lat: coordText(d.merchant.lat),
    merchant_lng: coordText(d.merchant.lng),
    tax_rate_bps: d.tax_rate_bps,
    tolerance_bps: d.tolerance_bps,
    tolerance_cents: d.tolerance_cents,
    hold_cents: d.hold_cents,
    estimated_cents: d.estimated_cents,
    spec_hash: d.spec_hash ?? null,
    spec: d.spec ?? null,
    at_ms: d.at_ms,
    event_id: e.eventId,
    stream_id: e.streamId,
  };
}

/**
 * A trip is written once, by its trip.upserted event. A row already there for the same
 * (shopper_id, trip_id) is the same trip only when it has the same spec (the trip was created
 * again in Redis with the same body, e.g. after its keys were lost); anything else is a conflict
 * that must not be merged into the recorded trip: EventError, so the event is dead-lettered with
 * this reason (and alerted) instead of dropped.
 */
async function insertTrips(db: Db, events: readonly Ev<'trip.upserted'>[]): Promise<void> {
  if (events.length === 0) return;
  const trips = events.map(tripRow);
  const inserted = await jsonRows<{ shopper_id: string; trip_id: string }>(
    db,
    `insert into trips (trip_id, shopper_id, partition, status, currency, merchant_name, merchant_address,
                        merchant_lat, merchant_lng, tax_rate_bps, tolerance_bps, tolerance_cents, hold_cents,
                        estimated_cents, spec_hash, spec, created_ms, activity_ms, event_id, stream_id)
     select x.trip_id, x.shopper_id, x.partition, 'open', x.currency, x.merchant_name, x.merchant_address,
            x.merchant_lat, x.merchant_lng, x.tax_rate_bps, x.tolerance_bps, x.tolerance_cents, x.hold_cents,
            x.estimated_cents, x.spec_hash, x.spec, x.at_ms, x.at_ms, x.event_id, x.stream_id
       from json_to_recordset(?::json) as x(trip_id text, shopper_id text, partition int, currency text,
            merchant_name text, merchant_address text, merchant_lat text, merchant_lng text, tax_rate_bps int,
            tolerance_bps int, tolerance_cents bigint, hold_cents bigint, estimated_cents bigint, spec_hash text,
            spec text, at_ms bigint, event_id text, stream_id text)
     on conflict (shopper_id, trip_id) do nothing
     returning shopper_id, trip_id`,
    trips,
  );
  if (inserted.length !== trips.length) await refuseTripConflicts(db, events, inserted);
  await insertOrdersAndItems(db, events);
}

/** Each trip's orders and items, in the order the trip spec lists them (position). */
async function insertOrdersAndItems(db: Db, events: readonly Ev<'trip.upserted'>[]): Promise<void> {
  const orders: object[] = [];
  const items: object[] = [];
  for (const e of events) {
    let position = 0;
    e.d.orders.forEach((o, i) => {
      orders.push({ shopper_id: e.d.shopper_id, trip_id: e.d.trip_id, order_id: o.order_id, position: i });
      for (const it of o.items) {
        items.push({
          shopper_id: e.d.shopper_id,
          trip_id: e.d.trip_id,
          item_id: it.item_id,
          order_id: o.order_id,
          position: position++,
          quantity_milli: it.quantity_milli,
          unit: it.unit,
          unit_price_cents: it.unit_price_cents,
          estimated_cents: it.estimated_cents,
        });
      }
    });
  }
  await jsonRows(
    db,
    `insert into orders (shopper_id, trip_id, order_id, position)
     select x.shopper_id, x.trip_id, x.order_id, x.position
       from json_to_recordset(?::json) as x(shopper_id text, trip_id text, order_id text, position int)
     on conflict (shopper_id, trip_id, order_id) do nothing`,
    orders,
  );
  await jsonRows(
    db,
    `insert into items (shopper_id, trip_id, item_id, order_id, position, quantity_milli, unit, unit_price_cents,
                        estimated_cents)
     select x.shopper_id, x.trip_id, x.item_id, x.order_id, x.position, x.quantity_milli, x.unit, x.unit_price_cents,
            x.estimated_cents
       from json_to_recordset(?::json) as x(shopper_id text, trip_id text, item_id text, order_id text, position int,
            quantity_milli bigint, unit text, unit_price_cents bigint, estimated_cents bigint)
     on conflict (shopper_id, trip_id, item_id) do nothing`,
    items,
  );
}

async function refuseTripConflicts(
  db: Db,
  events: readonly Ev<'trip.upserted'>[],
  inserted: readonly { shopper_id: string; trip_id: string }[],
): Promise<void> {
  // The first event of each trip inserted now is the recorded trip; every other event (a second
  // trip.upserted of the same trip in this batch included) is checked against what is recorded.
  const fresh = new Set(inserted.map(tripKey));
  const others = events.filter((e) => !fresh.delete(tripKey(e.d)));
  const recorded = await jsonRows<{ shopper_id: string; trip_id: string; spec_hash: string | null }>(
    db,
    `select t.shopper_id, t.trip_id, t.spec_hash
       from json_to_recordset(?::json) as x(shopper_id text, trip_id text)
       join trips t on t.shopper_id = x.shopper_id and t.trip_id = x.trip_id`,
    others.map((e) => ({ shopper_id: e.d.shopper_id, trip_id: e.d.trip_id })),
  );
  const specOf = new Map(recorded.map((r) => [tripKey(r), r.spec_hash]));
  const conflicts = others.filter((e) => {
    const spec = specOf.get(tripKey(e.d));
    return spec === undefined || spec === null || spec !== (e.d.spec_hash ?? null);
  });
  if (conflicts.length === 0) {
    // The same trip created again in Redis (its keys were lost before hydrate, or expired): the
    // recorded row is that trip, and from now on its version is the new one (created_ms), which
    // every later event carries.
    await jsonRows(
      db,
      `update trips t set created_ms = x.at_ms
         from json_to_recordset(?::json) as x(shopper_id text, trip_id text, at_ms bigint)
        where t.shopper_id = x.shopper_id and t.trip_id = x.trip_id and t.created_ms < x.at_ms`,
      others.map((e) => ({ shopper_id: e.d.shopper_id, trip_id: e.d.trip_id, at_ms: e.d.at_ms })),
    );
    return;
  }
  throw new EventError(
    `trip.upserted conflicts with the recorded trip (same shopper and trip id, different body): ${conflicts
      .map((e) => `${e.d.shopper_id}/${e.d.trip_id}`)
      .join(', ')}`,
  );
}

async function applyPicks(db: Db, events: readonly Ev<'item.updated'>[]): Promise<void> {
  const newest = newestBy(events, (e) => `${tripKey(e.d)}\u0000${e.d.item_id}`);
  const data = newest.map((e) => {
    const d: ItemUpdated = e.d;
    return {
      shopper_id: d.shopper_id,
      trip_id: d.trip_id,
      trip_created_ms: d.trip_created_ms,
      item_id: d.item_id,
      status: d.status,
      quantity_milli: d.quantity_milli,
      unit_price_cents: d.unit_price_cents,
      line_cents: d.line_cents,
      replacement_item_id: d.replacement_item_id,
      customer_approved: d.customer_approved,
      at_ms: d.at_ms,
      pos: e.pos,
    };
  });
  // An older pick never overwrites a newer one; a missing item is a poison event.
  const found = await jsonRows<{ shopper_id: string; trip_id: string; item_id: string }>(
    db,
    `with x as (
       select * from json_to_recordset(?::json) as x(shopper_id text, trip_id text, trip_created_ms bigint,
              item_id text, status text, quantity_milli bigint,
              unit_price_cents bigint, line_cents bigint, replacement_item_id text, customer_approved boolean,
              at_ms bigint, pos text)
     ), upd as (
       update items i
          set pick_status = x.status, pick_quantity_milli = x.quantity_milli, pick_unit_price_cents = x.unit_price_cents,
              pick_line_cents = x.line_cents, replacement_item_id = x.replacement_item_id,
              customer_approved = x.customer_approved, picked_ms = x.at_ms, pick_pos = x.pos
         from x
        where i.shopper_id = x.shopper_id and i.trip_id = x.trip_id and i.item_id = x.item_id
          and (i.pick_pos is null or i.pick_pos < x.pos)
          and (x.trip_created_ms is null or exists (select 1 from trips t where t.shopper_id = x.shopper_id
                 and t.trip_id = x.trip_id and t.created_ms = x.trip_created_ms))
       returning i.trip_id
     )
     select x.shopper_id, x.trip_id, x.item_id from x
       join items i on i.shopper_id = x.shopper_id and i.trip_id = x.trip_id and i.item_id = x.item_id
       join trips t on t.shopper_id = x.shopper_id and t.trip_id = x.trip_id
      where x.trip_created_ms is null or t.created_ms = x.trip_created_ms`,
    data,
  );
  if (found.length !== data.length) {
    const have = new Set(found.map((r) => `${tripKey(r)}\u0000${r.item_id}`));
    const missing = data.filter((d) => !have.has(`${tripKey(d)}\u0000${d.item_id}`));
    throw new EventError(
      `item.updated for unknown item(s) (or another version of the trip): ${missing.map((m) => `${m.shopper_id}/${m.trip_id}/${m.item_id}`).join(', ')}`,
    );
  }
}

async function insertAuthorizations(
  db: Db,
  events: readonly (Ev<'authorization.decided'> | Ev<'failopen.replayed'>)[],
): Promise<Set<string>> {
  const data = events.map((e) => {
    const d: AuthorizationDecided = e.d;
    return {
      replayed_ms: e.type === 'failopen.replayed' ? e.d.replayed_ms : null,
      authorization_id: d.authorization_id,
      event_id: e.eventId,
      partition: e.partition,
      stream_id: e.streamId,
      idempotency_key: d.idempotency_key,
      fingerprint: d.fingerprint,
      signature: d.signature,
      http_status: d.status,
      transaction_id: d.transaction_id,
      shopper_id: d.shopper_id,
      trip_id: d.trip_id,
      decision: d.decision,
      reason: d.reason,
      mode: d.mode,
      amount_cents: d.amount_cents,
      remaining_cents: d.remaining_cents,
      trip_authorized_cents: d.authorized_cents,
      currency: d.currency,
      merchant_name: d.merchant_name,
      merchant_address: d.merchant_address,
      lat: coordText(d.lat),
      lng: coordText(d.lng),
      decided_ms: d.at_ms,
      processor: d.processor ?? null,
      processor_card_id: d.processor_card_id ?? null,
      processor_authorization_id: d.processor_authorization_id ?? null,
      processor_request_id: d.processor_request_id ?? null,
      requested_cents: d.requested_cents ?? null,
    };
  });
  const inserted = await jsonRows<{ authorization_id: string }>(
    db,
    `insert into authorizations (authorization_id, event_id, partition, stream_id, idempotency_key, fingerprint,
            signature, http_status, transaction_id, shopper_id, trip_id, decision, reason, mode, amount_cents,
            remaining_cents, trip_authorized_cents, currency, merchant_name, merchant_address, lat, lng, decided_ms,
            replayed_ms, processor, processor_card_id, processor_authorization_id, processor_request_id,
            requested_cents)
     select x.authorization_id, x.event_id, x.partition, x.stream_id, x.idempotency_key, x.fingerprint, x.signature,
            x.http_status, x.transaction_id, x.shopper_id, x.trip_id, x.decision, x.reason, x.mode, x.amount_cents,
            x.remaining_cents, x.trip_authorized_cents, x.currency, x.merchant_name, x.merchant_address, x.lat, x.lng,
            x.decided_ms, x.replayed_ms, x.processor, x.processor_card_id, x.processor_authorization_id,
            x.processor_request_id, x.requested_cents
       from json_to_recordset(?::json) as x(replayed_ms bigint, authorization_id text, event_id text, partition int,
            stream_id text, idempotency_key text, fingerprint text, signature text, http_status int,
            transaction_id text, shopper_id text, trip_id text, decision text, reason text, mode text,
            amount_cents bigint, remaining_cents bigint, trip_authorized_cents bigint, currency text,
            merchant_name text, merchant_address text, lat text, lng text, decided_ms bigint, processor text,
            processor_card_id text, processor_authorization_id text, processor_request_id text,
            requested_cents bigint)
     on conflict (authorization_id) do nothing
     returning authorization_id`,
    data,
  );
  return new Set(inserted.map((r) => r.authorization_id));
}

/**
 * failopen.replayed: every replay is recorded; an "applied" one is also the
 * authorization (mode fail_open, counted against trip_id); "already_decided"
 * on our own timed-out call turns the stored decision into the delivered
 * fail-open answer, as the script does in Redis.
 */
async function applyFailopenReplays(
  db: Db,
  events: readonly Ev<'failopen.replayed'>[],
): Promise<Set<string>> {
  await recordFailopenReplays(db, events);
  await markOwnFailopenAnswers(db, events);
  const overridden = await overrideLateDeclines(db, events);
  const applied = await insertAuthorizations(
    db,
    events.filter((e) => e.d.replay_outcome === 'applied'),
  );
  for (const r of overridden) applied.add(r.authorization_id);
  return applied;
}

/** One failopen_replays row per replayed answer, whatever Redis made of it. */
async function recordFailopenReplays(db: Db, events: readonly Ev<'failopen.replayed'>[]): Promise<void> {
  await jsonRows(
    db,
    `insert into failopen_replays (event_id, authorization_id, partition, stream_id, outcome, shopper_id, trip_id,
            transaction_id, idempotency_key, amount_cents, decided_ms, replayed_ms, redis_authorization_id,
            redis_decision, redis_reason)
     select x.* from json_to_recordset(?::json) as x(event_id text, authorization_id text, partition int,
            stream_id text, outcome text, shopper_id text, trip_id text, transaction_id text, idempotency_key text,
            amount_cents bigint, decided_ms bigint, replayed_ms bigint, redis_authorization_id text,
            redis_decision text, redis_reason text)
     on conflict (event_id) do nothing`,
    events.map((e) => ({
      event_id: e.eventId,
      authorization_id: e.d.authorization_id,
      partition: e.partition,
      stream_id: e.streamId,
      outcome: e.d.replay_outcome,
      shopper_id: e.d.shopper_id,
      trip_id: e.d.trip_id,
      transaction_id: e.d.transaction_id,
      idempotency_key: e.d.idempotency_key,
      amount_cents: e.d.amount_cents,
      decided_ms: e.d.at_ms,
      replayed_ms: e.d.replayed_ms,
      redis_authorization_id: e.d.redis_authorization_id,
      redis_decision: e.d.redis_decision,
      redis_reason: e.d.redis_reason,
    })),
  );
}

/** Our own answer Redis had already decided: the authorization is marked as given under fail-open. */
async function markOwnFailopenAnswers(db: Db, events: readonly Ev<'failopen.replayed'>[]): Promise<void> {
  const own = events.filter(
    (e) => e.d.replay_outcome === 'already_decided' && e.d.redis_authorization_id === e.d.authorization_id,
  );
  await jsonRows(
    db,
    `update authorizations a set mode = 'fail_open', remaining_cents = x.remaining_cents, replayed_ms = x.replayed_ms
       from json_to_recordset(?::json) as x(authorization_id text, remaining_cents bigint, replayed_ms bigint)
      where a.authorization_id = x.authorization_id`,
    own.map((e) => ({
      authorization_id: e.d.authorization_id,
      remaining_cents: e.d.remaining_cents,
      replayed_ms: e.d.replayed_ms,
    })),
  );
}

/**
 * The answer given is the record: our own late call that Redis declined
 * becomes the fail-open approval the processor got (counted, flagged in
 * failopen_replays with Redis's reason).
 */
async function overrideLateDeclines(
  db: Db,
  events: readonly Ev<'failopen.replayed'>[],
): Promise<Array<{ authorization_id: string }>> {
  return jsonRows<{ authorization_id: string }>(
    db,
    `update authorizations a set decision = 'approved', reason = null, http_status = 200, mode = 'fail_open',
            trip_id = x.trip_id, remaining_cents = x.remaining_cents, trip_authorized_cents = x.authorized_cents,
            replayed_ms = x.replayed_ms
       from json_to_recordset(?::json) as x(authorization_id text, trip_id text, remaining_cents bigint,
            authorized_cents bigint, replayed_ms bigint)
      where a.authorization_id = x.authorization_id
      returning a.authorization_id`,
    events
      .filter((e) => e.d.replay_outcome === 'overridden')
      .map((e) => ({
        authorization_id: e.d.authorization_id,
        trip_id: e.d.trip_id,
        remaining_cents: e.d.remaining_cents,
        authorized_cents: e.d.authorized_cents,
        replayed_ms: e.d.replayed_ms,
      })),
  );
}

async function insertReversals(db: Db, events: readonly Ev<'reversal.applied'>[]): Promise<Set<string>> {
  const { ids, fresh } = await insertNewEvents(
    db,
    `insert into reversals (event_id, reversal_key, authorization_id, transaction_id, shopper_id, trip_id, partition,
            stream_id, amount_cents, reversed_cents, held_cents, trip_authorized_cents, requested, applied_ms, signature)
     select x.* from json_to_recordset(?::json) as x(event_id text, reversal_key text, authorization_id text,
            transaction_id text, shopper_id text, trip_id text, partition int, stream_id text, amount_cents bigint,
            reversed_cents bigint, held_cents bigint, trip_authorized_cents bigint, requested text, applied_ms bigint,
            signature text)
     on conflict (event_id) do nothing
     returning event_id`,
    events,
    (e) => {
      const d: ReversalApplied = e.d;
      return {
        ...eventColumns(e),
        reversal_key: d.reversal_key,
        transaction_id: d.transaction_id,
        amount_cents: d.amount_cents,
        reversed_cents: d.reversed_cents,
        held_cents: d.held_cents,
        trip_authorized_cents: d.authorized_cents,
        requested: d.requested ?? null,
        applied_ms: d.at_ms,
        signature: d.signature ?? null,
      };
    },
  );
  const newest = newestBy(fresh, (e) => e.d.authorization_id);
  await jsonRows(
    db,
    `update authorizations a set reversed_cents = x.reversed_cents, reversed_pos = x.pos
       from json_to_recordset(?::json) as x(authorization_id text, reversed_cents bigint, pos text)
      where a.authorization_id = x.authorization_id and a.reversed_pos < x.pos`,
    newest.map((e) => ({
      authorization_id: e.d.authorization_id,
      reversed_cents: e.d.reversed_cents,
      pos: e.pos,
    })),
  );
  return ids;
}

/** clearing.flagged: a clearing that could not be applied, kept for review (no ledger posting). */
async function insertClearingFlags(db: Db, events: readonly Ev<'clearing.flagged'>[]): Promise<void> {
  await jsonRows(
    db,
    `insert into clearing_flags (event_id, authorization_id, transaction_id, shopper_id, trip_id, partition, stream_id,
            currency, flag, amount_cents, reversed_cents, cleared_cents, excess_cents, cleared_at_ms, flagged_ms)
     select x.* from json_to_recordset(?::json) as x(event_id text, authorization_id text, transaction_id text,
            shopper_id text, trip_id text, partition int, stream_id text, currency text, flag text, amount_cents bigint,
            reversed_cents bigint, cleared_cents bigint, excess_cents bigint, cleared_at_ms bigint, flagged_ms bigint)
     on conflict do nothing`,
    events.map((e) => ({
      ...eventColumns(e),
      transaction_id: e.d.transaction_id,
      currency: e.d.currency,
      flag: e.d.flag,
      amount_cents: e.d.amount_cents,
      reversed_cents: e.d.reversed_cents,
      cleared_cents: e.d.cleared_cents,
      excess_cents: e.d.excess_cents,
      cleared_at_ms: e.d.cleared_at_ms,
      flagged_ms: e.d.at_ms,
    })),
  );
}

/** The columns every row of an authorization's later event starts with. */
function eventColumns(e: Ev<'clearing.posted' | 'clearing.flagged' | 'hold.expired' | 'reversal.applied'>) {
  return {
    event_id: e.eventId,
    authorization_id: e.d.authorization_id,
    shopper_id: e.d.shopper_id,
    trip_id: e.d.trip_id,
    partition: e.partition,
    stream_id: e.streamId,
  };
}

/** Inserts one row per event (`sql` ends `returning event_id`); returns the events that were new. */
async function insertNewEvents<E extends WalEvent>(
  db: Db,
  sql: string,
  events: readonly E[],
  row: (e: E) => object,
): Promise<{ ids: Set<string>; fresh: E[] }> {
  const inserted = await jsonRows<{ event_id: string }>(db, sql, events.map(row));
  const ids = new Set(inserted.map((r) => r.event_id));
  return { ids, fresh: events.filter((e) => ids.has(e.eventId)) };
}

async function insertClearings(db: Db, events: readonly Ev<'clearing.posted'>[]): Promise<Set<string>> {
  const { ids, fresh } = await insertNewEvents(
    db,
    `insert into clearings (event_id, authorization_id, transaction_id, shopper_id, trip_id, partition, stream_id,
            currency, amount_cents, reversed_cents, released_cents, cleared_cents, cleared_at_ms, applied_ms, signature)
     select x.* from json_to_recordset(?::json) as x(event_id text, authorization_id text, transaction_id text,
            shopper_id text, trip_id text, partition int, stream_id text, currency text, amount_cents bigint,
            reversed_cents bigint, released_cents bigint, cleared_cents bigint, cleared_at_ms bigint, applied_ms bigint,
            signature text)
     on conflict do nothing
     returning event_id`,
    events,
    (e) => ({
      ...eventColumns(e),
      transaction_id: e.d.transaction_id,
      currency: e.d.currency,
      amount_cents: e.d.amount_cents,
      reversed_cents: e.d.reversed_cents,
      released_cents: e.d.released_cents,
      cleared_cents: e.d.cleared_cents,
      cleared_at_ms: e.d.cleared_at_ms,
      applied_ms: e.d.at_ms,
      signature: e.d.signature,
    }),
  );
  await jsonRows(
    db,
    `update authorizations a set cleared_cents = x.cleared_cents, cleared_ms = x.cleared_ms
       from json_to_recordset(?::json) as x(authorization_id text, cleared_cents bigint, cleared_ms bigint)
      where a.authorization_id = x.authorization_id`,
    fresh.map((e) => ({
      authorization_id: e.d.authorization_id,
      cleared_cents: e.d.cleared_cents,
      cleared_ms: e.d.at_ms,
    })),
  );
  return ids;
}

async function insertHoldExpiries(db: Db, events: readonly Ev<'hold.expired'>[]): Promise<Set<string>> {
  const { ids, fresh } = await insertNewEvents(
    db,
    `insert into hold_expiries (event_id, authorization_id, shopper_id, trip_id, partition, stream_id, currency,
            released_cents, reason, redis_state, applied_ms)
     select x.* from json_to_recordset(?::json) as x(event_id text, authorization_id text, shopper_id text,
            trip_id text, partition int, stream_id text, currency text, released_cents bigint, reason text,
            redis_state text, applied_ms bigint)
     on conflict do nothing
     returning event_id`,
    events,
    (e) => ({
      ...eventColumns(e),
      currency: e.d.currency,
      released_cents: e.d.released_cents,
      reason: e.d.reason,
      redis_state: e.d.redis_state,
      applied_ms: e.d.at_ms,
    }),
  );
  await jsonRows(
    db,
    `update authorizations a set expired_cents = x.released_cents, expired_ms = x.at_ms
       from json_to_recordset(?::json) as x(authorization_id text, released_cents bigint, at_ms bigint)
      where a.authorization_id = x.authorization_id`,
    fresh.map((e) => ({
      authorization_id: e.d.authorization_id,
      released_cents: e.d.released_cents,
      at_ms: e.d.at_ms,
    })),
  );
  return ids;
}

/** card.registered: the newest event per card wins (updated_pos guards against an older one). */
async function upsertCards(db: Db, events: readonly Ev<'card.registered'>[]): Promise<void> {
  if (events.length === 0) return;
  const data = newestBy(events, (e) => `${e.d.processor}\u0000${e.d.card_id}`).map((e) => ({
    processor: e.d.processor,
    card_id: e.d.card_id,
    shopper_id: e.d.shopper_id,
    status: e.d.status,
    owners: e.d.owners,
    partition: e.partition,
    updated_ms: e.d.at_ms,
    updated_pos: e.pos,
  }));
  await jsonRows(
    db,
    `insert into processor_cards (processor, card_id, shopper_id, status, owners, partition, updated_ms, updated_pos)
     select x.processor, x.card_id, x.shopper_id, x.status, x.owners, x.partition, x.updated_ms, x.updated_pos
       from json_to_recordset(?::json) as x(processor text, card_id text, shopper_id text, status text, owners text,
            partition int, updated_ms bigint, updated_pos text)
     on conflict (processor, card_id) do update set shopper_id = excluded.shopper_id, status = excluded.status,
            owners = excluded.owners, partition = excluded.partition, updated_ms = excluded.updated_ms,
            updated_pos = excluded.updated_pos
      where processor_cards.updated_pos < excluded.updated_pos`,
    data,
  );
}

async function flagLate(db: Db, events: readonly Ev<'authorization.late'>[]): Promise<void> {
  await jsonRows(
    db,
    `update authorizations a set late_ms = x.at_ms, late_elapsed_ms = x.elapsed_ms
       from json_to_recordset(?::json) as x(authorization_id text, at_ms bigint, elapsed_ms bigint)
      where a.authorization_id = x.authorization_id and a.late_ms is null`,
    events.map((e) => ({
      authorization_id: e.d.authorization_id,
      at_ms: e.d.at_ms,
      elapsed_ms: e.d.elapsed_ms,
    })),
  );
}

interface TripDelta {
  shopper_id: string;
  trip_id: string;
  approved: number;
  reversed: number;
  picked: number | null;
  picked_pos: string;
  authorized: number | null;
  authorized_pos: string;
  activity_ms: number;
  shopping: boolean;
  closed_ms: number | null;
  /** The trip version the events were made on (its created_ms); null when none of them says. */
  created_ms: number | null;
}

function delta(
  m: Map<string, TripDelta>,
  shopperId: string,
  tripId: string,
  createdMs: number | null,
): TripDelta {
  const key = tripKey({ shopper_id: shopperId, trip_id: tripId });
  let d = m.get(key);
  if (d === undefined) {
    d = {
      shopper_id: shopperId,
      trip_id: tripId,
      approved: 0,
      reversed: 0,
      picked: null,
      picked_pos: '',
      authorized: null,
      authorized_pos: '',
      activity_ms: 0,
      shopping: false,
      closed_ms: null,
      created_ms: createdMs,
    };
    m.set(key, d);
  } else if (createdMs !== null) {
    // Two versions of one trip in a batch (the id was reused after its keys expired): never one row.
    if (d.created_ms !== null && d.created_ms !== createdMs) {
      throw new EventError(
        `events of two versions of trip ${shopperId}/${tripId} (created ${d.created_ms}, ${createdMs})`,
      );
    }
    d.created_ms = createdMs;
  }
  return d;
}

function setPicked(d: TripDelta, cents: number, pos: string): void {
  if (pos > d.picked_pos) {
    d.picked = cents;
    d.picked_pos = pos;
  }
}

function setAuthorized(d: TripDelta, cents: number, pos: string): void {
  if (pos > d.authorized_pos) {
    d.authorized = cents;
    d.authorized_pos = pos;
  }
}

/**
 * Moves each trip's totals. Every event that names a trip must find it: a trip missing from
 * Postgres (its trip.upserted was dead-lettered, or names another shopper's trip) is an EventError,
 * never an update of nothing.
 */
async function updateTrips(db: Db, deltas: Map<string, TripDelta>): Promise<void> {
  if (deltas.size === 0) return;
  // Sorted by identity: concurrent writers lock rows in one order (no deadlock).
  const data = [...deltas.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, d]) => d);
  const updated = await jsonRows<{ shopper_id: string; trip_id: string }>(
    db,
    `update trips t set
        approved_cents = t.approved_cents + x.approved,
        reversed_cents = t.reversed_cents + x.reversed,
        picked_cents = case when x.picked is not null and x.picked_pos > t.picked_pos then x.picked else t.picked_cents end,
        picked_pos = greatest(t.picked_pos, x.picked_pos),
        authorized_cents = case when x.authorized is not null and x.authorized_pos > t.authorized_pos
                                then x.authorized else t.authorized_cents end,
        authorized_pos = greatest(t.authorized_pos, x.authorized_pos),
        activity_ms = greatest(t.activity_ms, x.activity_ms),
        status = case when t.status = 'closed' or x.closed_ms is not null then 'closed'
                      when x.shopping then 'shopping' else t.status end,
        closed_ms = coalesce(t.closed_ms, x.closed_ms)
       from json_to_recordset(?::json) as x(shopper_id text, trip_id text, approved bigint, reversed bigint,
            picked bigint, picked_pos text, authorized bigint, authorized_pos text, activity_ms bigint,
            shopping boolean, closed_ms bigint, created_ms bigint)
      where t.shopper_id = x.shopper_id and t.trip_id = x.trip_id
        and (x.created_ms is null or t.created_ms = x.created_ms)
      returning t.shopper_id, t.trip_id`,
    data,
  );
  if (updated.length !== data.length) {
    const found = new Set(updated.map(tripKey));
    const missing = data.filter((d) => !found.has(tripKey(d)));
    throw new EventError(
      `event(s) for trip(s) not recorded in Postgres (or another version of them): ${missing
        .map((d) => `${d.shopper_id}/${d.trip_id}@${d.created_ms ?? '?'}`)
        .join(', ')}`,
    );
  }
}

async function recordOffsets(db: Db, events: readonly WalEvent[]): Promise<void> {
  const m = new Map<number, { partition: number; stream_id: string; wal_pos: string; n: number }>();
  for (const e of events) {
    const o = m.get(e.partition);
    if (o === undefined)
      m.set(e.partition, { partition: e.partition, stream_id: e.streamId, wal_pos: e.pos, n: 1 });
    else {
      o.n += 1;
      if (e.pos > o.wal_pos) {
        o.wal_pos = e.pos;
        o.stream_id = e.streamId;
      }
    }
  }
  await jsonRows(
    db,
    `insert into stream_offsets (partition, stream_id, wal_pos, events_total, updated_at)
     select x.partition, x.stream_id, x.wal_pos, x.n, now()
       from json_to_recordset(?::json) as x(partition int, stream_id text, wal_pos text, n bigint)
       order by x.partition
     on conflict (partition) do update set
        stream_id = case when excluded.wal_pos > stream_offsets.wal_pos then excluded.stream_id else stream_offsets.stream_id end,
        wal_pos = greatest(stream_offsets.wal_pos, excluded.wal_pos),
        events_total = stream_offsets.events_total + excluded.events_total,
        updated_at = now()`,
    [...m.values()],
  );
}

/**
 * Each trip's totals after this batch's fresh events: increments only from rows inserted now,
 * "after" values only when newer (WAL position), one version of the trip (delta()).
 */
function tripDeltas(
  byType: ByType,
  fresh: {
    readonly auths: ReadonlySet<string>;
    readonly replays: ReadonlySet<string>;
    readonly reversals: ReadonlySet<string>;
    readonly clearings: ReadonlySet<string>;
    readonly expiries: ReadonlySet<string>;
  },
): Map<string, TripDelta> {
  const deltas = new Map<string, TripDelta>();
  for (const e of byType.of('item.updated')) {
    const d = delta(deltas, e.d.shopper_id, e.d.trip_id, e.d.trip_created_ms);
    setPicked(d, e.d.picked_cents, e.pos);
    d.activity_ms = Math.max(d.activity_ms, e.d.at_ms);
    d.shopping = true;
  }
  for (const e of byType.of('trip.closed')) {
    const d = delta(deltas, e.d.shopper_id, e.d.trip_id, e.d.trip_created_ms);
    setPicked(d, e.d.picked_cents, e.pos);
    setAuthorized(d, e.d.authorized_cents, e.pos);
    d.closed_ms = d.closed_ms === null ? e.d.at_ms : Math.min(d.closed_ms, e.d.at_ms);
  }
  for (const e of byType.of('authorization.decided')) {
    if (e.d.trip_id === null || !fresh.auths.has(e.d.authorization_id)) continue;
    const d = delta(deltas, e.d.shopper_id, e.d.trip_id, e.d.trip_created_ms);
    if (e.d.decision === 'approved') {
      d.approved += e.d.amount_cents;
      d.activity_ms = Math.max(d.activity_ms, e.d.at_ms);
    }
    if (e.d.authorized_cents !== null) setAuthorized(d, e.d.authorized_cents, e.pos);
  }
  for (const e of byType.of('failopen.replayed')) {
    if (e.d.trip_id === null || e.d.authorized_cents === null || !fresh.replays.has(e.d.authorization_id))
      continue;
    const d = delta(deltas, e.d.shopper_id, e.d.trip_id, e.d.trip_created_ms);
    d.approved += e.d.amount_cents;
    d.activity_ms = Math.max(d.activity_ms, e.d.at_ms);
    setAuthorized(d, e.d.authorized_cents, e.pos);
  }
  for (const e of byType.of('reversal.applied')) {
    // The script moves the trip's totals only while the trip key exists (authorized_cents not null).
    if (e.d.trip_id === null || e.d.authorized_cents === null || !fresh.reversals.has(e.eventId)) continue;
    const d = delta(deltas, e.d.shopper_id, e.d.trip_id, e.d.trip_created_ms);
    d.reversed += e.d.amount_cents;
    setAuthorized(d, e.d.authorized_cents, e.pos);
  }
  for (const e of [...byType.of('clearing.posted'), ...byType.of('hold.expired')]) {
    // The script moves the trip's total only while the trip key exists (authorized_cents not null).
    if (e.d.trip_id === null || e.d.authorized_cents === null) continue;
    if (!(fresh.clearings.has(e.eventId) || fresh.expiries.has(e.eventId))) continue;
    setAuthorized(
      delta(deltas, e.d.shopper_id, e.d.trip_id, e.d.trip_created_ms),
      e.d.authorized_cents,
      e.pos,
    );
  }
  return deltas;
}

/**
 * Applies events (any partitions, each partition's events in stream order) in
 * the caller's transaction. Throws EventError (or a Postgres data/constraint
 * error) when an event cannot be applied; the caller then retries one event
 * at a time to find it. `known`: card-holds accounts known to exist
 * (committed), whose upsert is skipped.
 */
export async function applyEvents(
  db: Db,
  events: readonly WalEvent[],
  known?: KnownAccounts,
): Promise<ApplyResult> {
  if (events.length === 0) return { applied: {}, duplicates: 0, accounts: [] };
  const decided = events.filter((e): e is Ev<'authorization.decided'> => e.type === 'authorization.decided');
  // Two claims, one per kind of key (see the top of this file). A decision is the bulk of the
  // WAL: claiming it by the row it writes anyway saves a row and an index entry per decision.
  const freshIds = await claimEventIds(
    db,
    events.filter((e) => e.type !== 'authorization.decided'),
  );
  const insertedAuths = await insertAuthorizations(
    db,
    firstBy(decided, (e) => e.d.authorization_id),
  );
  // The same event twice in one batch (a re-XADD): only its first entry has an effect.
  const firstTime = new Set(insertedAuths);
  const fresh = events.filter((e) =>
    e.type === 'authorization.decided' ? firstTime.delete(e.d.authorization_id) : freshIds.delete(e.eventId),
  );
  const applied: Record<string, number> = {};
  for (const e of fresh) applied[e.type] = (applied[e.type] ?? 0) + 1;
  const byType = new ByType(fresh);

  await insertTrips(db, byType.of('trip.upserted'));
  const picks = byType.of('item.updated');
  await applyPicks(db, picks);
  const auths = byType.of('authorization.decided');
  const replays = byType.of('failopen.replayed');
  const insertedReplays = await applyFailopenReplays(db, replays);
  const reversals = byType.of('reversal.applied');
  const insertedReversals = await insertReversals(db, reversals);
  const clearings = byType.of('clearing.posted');
  const insertedClearings = await insertClearings(db, clearings);
  await insertClearingFlags(db, byType.of('clearing.flagged'));
  const expiries = byType.of('hold.expired');
  const insertedExpiries = await insertHoldExpiries(db, expiries);
  await flagLate(db, byType.of('authorization.late'));
  await upsertCards(db, byType.of('card.registered'));
  const refunds = byType.of('refund.recorded');
  const insertedRefunds = await insertRefunds(db, refunds);
  await insertUnknownCardSwipes(db, byType.of('card.unknown_swipe'));

  // Ledger: one posting per event that had an effect now, in the same transaction (docs/ledger.md).
  const postings: Posting[] = [];
  const post = (e: WalEvent) => {
    const p = postingFor(e);
    if (p !== undefined) postings.push(p);
  };
  for (const e of auths) if (insertedAuths.has(e.d.authorization_id)) post(e);
  for (const e of replays) {
    const counted = e.d.replay_outcome === 'applied' || e.d.replay_outcome === 'overridden';
    if (counted ? insertedReplays.has(e.d.authorization_id) : true) post(e);
  }
  for (const e of reversals) if (insertedReversals.has(e.eventId)) post(e);
  for (const e of clearings) if (insertedClearings.has(e.eventId)) post(e);
  for (const e of expiries) if (insertedExpiries.has(e.eventId)) post(e);
  for (const e of refunds) if (insertedRefunds.has(e.eventId)) post(e);
  const { accounts } = await writePostings(db, postings, known);

  const deltas = tripDeltas(byType, {
    auths: insertedAuths,
    replays: insertedReplays,
    reversals: insertedReversals,
    clearings: insertedClearings,
    expiries: insertedExpiries,
  });
  await updateTrips(db, deltas);
  await recordOffsets(db, fresh);
  return { applied, duplicates: events.length - fresh.length, accounts };
}

/**
 * refund.recorded: one row per processor refund id (a second WAL entry for it, after the Redis
 * marker expired, inserts nothing and posts nothing). `flagged`: no authorization of ours matched.
 */
async function insertRefunds(db: Db, events: readonly Ev<'refund.recorded'>[]): Promise<Set<string>> {
  const rows = await jsonRows<{ event_id: string }>(
    db,
    `insert into refunds (event_id, processor, refund_id, card_id, shopper_id, authorization_ref, authorization_id,
            transaction_id, partition, stream_id, currency, amount_cents, refunded_at_ms, recorded_ms, flagged)
     select x.event_id, x.processor, x.refund_id, x.card_id, x.shopper_id, x.authorization_ref, x.authorization_id,
            x.transaction_id, x.partition, x.stream_id, x.currency, x.amount_cents, x.refunded_at_ms, x.recorded_ms,
            x.authorization_id is null
       from json_to_recordset(?::json) as x(event_id text, processor text, refund_id text, card_id text,
            shopper_id text, authorization_ref text, authorization_id text, transaction_id text, partition int,
            stream_id text, currency text, amount_cents bigint, refunded_at_ms bigint, recorded_ms bigint)
     on conflict (processor, refund_id) do nothing
     returning event_id`,
    events.map((e) => ({
      ...e.d,
      event_id: e.eventId,
      partition: e.partition,
      stream_id: e.streamId,
      recorded_ms: e.d.at_ms,
    })),
  );
  return new Set(rows.map((r) => r.event_id));
}

/**
 * card.unknown_swipe: one row per (processor, request id); a retry recorded again after its Redis
 * marker expired (or after a Redis loss) inserts nothing. No ledger posting: nothing was approved.
 */
async function insertUnknownCardSwipes(db: Db, events: readonly Ev<'card.unknown_swipe'>[]): Promise<void> {
  if (events.length === 0) return;
  await jsonRows(
    db,
    `insert into unknown_card_swipes (processor, request_id, authorization_ref, authorization_id, card_id,
            card_status, amount_cents, currency, merchant_name, merchant_mcc, merchant_postal, merchant_network_id,
            decision, reason, decided_ms, event_id, partition, stream_id)
     select x.processor, x.request_id, x.authorization_ref, x.authorization_id, x.card_id, x.card_status,
            x.amount_cents, x.currency, x.merchant_name, x.merchant_mcc, x.merchant_postal, x.merchant_network_id,
            x.decision, x.reason, x.at_ms, x.event_id, x.partition, x.stream_id
       from json_to_recordset(?::json) as x(processor text, request_id text, authorization_ref text,
            authorization_id text, card_id text, card_status text, amount_cents bigint, currency text,
            merchant_name text, merchant_mcc text, merchant_postal text, merchant_network_id text, decision text,
            reason text, at_ms bigint, event_id text, partition int, stream_id text)
     on conflict (processor, request_id) do nothing
     returning event_id`,
    events.map((e) => ({ ...e.d, event_id: e.eventId, partition: e.partition, stream_id: e.streamId })),
  );
}

/** SQLSTATE classes that mean "this event cannot be applied" rather than "Postgres is unavailable". */
export function isEventError(err: unknown): boolean {
  if (err instanceof EventError) return true;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('22') || code.startsWith('23'));
}
