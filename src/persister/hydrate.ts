// Rebuilds a partition's Redis state from Postgres after Redis lost data
// (flushed, or restarted without persistence). The layout written is exactly
// docs/redis-layout.md; every write is "only if the key does not exist"
// (lua/hydrate*.lua), so state the api wrote since the loss always wins and
// running hydrate twice (two api pods booting at once) is harmless.
//
// What comes back, per partition (now = the rebuild time):
//   trips whose keys would still live (last touch + trip_ttl_s + authorization_ttl_s),
//     with their items, picks, totals, velocity window (counted decisions of the
//     last 60 s, newest max_swipes_per_minute: the trip hash's `vel` field, or the
//     :swipes zset with VELOCITY_IN_TRIP_HASH off) and auths list (newest 200);
//   every shopper pointer (a shopper that ever had a trip stays known);
//   auth hashes within their TTL, idempotency keys within idempotency_ttl_s,
//     signature keys within 2 x signature_tolerance_s;
//   reversal replay keys within authorization_ttl_s.
// Then `<base>meta` gets hydrated_ms (or initialized_ms when Postgres had
// nothing for the partition), so the rebuild is not repeated.
import { hydrateCards } from '../cards/hydrate.js';
import { storeEvidenceFromSpec } from '../processors/common/merchant.js';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import type { Orm } from '../db/orm.js';
import { knexOf } from '../db/orm.js';
import { normalizeAddress, normalizeMerchantName } from '../domain/merchant.js';
import type { RedisClient } from '../redis/client.js';
import { type BatchCall, runBatch } from '../redis/batch.js';
import { Keys } from '../redis/keys.js';
import { DECLINE_REASONS } from '../redis/results.js';
import { pipelineCommandName, ScriptRunner, type ScriptName } from '../redis/scripts.js';
import {
  hydrateTrip,
  TRIP_AUTHORIZATIONS_KEPT,
  VELOCITY_WINDOW_MS,
  velocityField,
  velocityInHash,
} from '../redis/commands.js';

/** Decline reasons in contract order: the auth hash stores the index (+1) as `code`, 0 = approved. */

/** Decisions that never reach the trip's velocity window or auths list (authorizeSwipe-4.lua). */
export const NOT_COUNTED_REASONS = [
  'IDEMPOTENCY_CONFLICT',
  'UNKNOWN_SHOPPER',
  'TRIP_CLOSED',
  'NO_ACTIVE_TRIP',
  'STORAGE_UNAVAILABLE',
];

const PAGE_ROWS = 500;

export interface HydrateDeps {
  readonly config: Config;
  readonly orm: Orm;
  readonly client: RedisClient;
  readonly logger: Logger;
}

export interface PartitionCounts {
  trips: number;
  shoppers: number;
  authorizations: number;
  reversals: number;
}

export function metaKey(keys: Keys, partition: number): string {
  return `${keys.base(partition)}meta`;
}

function hydrateLockKey(keys: Keys, partition: number): string {
  return `${keys.base(partition)}hydrate:lock`;
}

interface TripRow {
  trip_id: string;
  shopper_id: string;
  status: string;
  currency: string;
  merchant_name: string;
  merchant_address: string;
  merchant_lat: string | null;
  merchant_lng: string | null;
  tax_rate_bps: number;
  tolerance_bps: number;
  tolerance_cents: string;
  hold_cents: string | null;
  estimated_cents: string;
  picked_cents: string;
  approved_cents: string;
  reversed_cents: string;
  authorized_cents: string;
  spec_hash: string | null;
  spec: string | null;
  created_ms: string;
  activity_ms: string;
  closed_ms: string | null;
  touched_ms: string;
}

interface AuthRow {
  authorization_id: string;
  idempotency_key: string;
  fingerprint: string;
  signature: string | null;
  http_status: number;
  transaction_id: string | null;
  shopper_id: string;
  trip_id: string | null;
  decision: string;
  reason: string | null;
  mode: string;
  amount_cents: string;
  remaining_cents: string;
  reversed_cents: string;
  currency: string;
  decided_ms: string;
  replayed_ms: string | null;
  /** From clearings / hold_expiries (null when none). */
  c_cleared: string | null;
  c_released: string | null;
  c_at_ms: string | null;
  c_ms: string | null;
  h_released: string | null;
  h_ms: string | null;
}

/** The auth hash's fields (lua/authorizeSwipe) rebuilt from its authorizations row, as name/value pairs. */
function authHashFields(a: AuthRow): (string | number)[] {
  const code =
    a.reason === null ? 0 : DECLINE_REASONS.indexOf(a.reason as (typeof DECLINE_REASONS)[number]) + 1;
  const failOpen = a.mode === 'fail_open';
  const fields: (string | number)[] = [
    'code',
    code,
    'status',
    a.http_status,
    'decision',
    a.decision,
    'mode',
    a.mode,
    // A fail-open answer told the processor no trip: `trip` stays empty, `fo_trip` is the trip counted.
    'trip',
    failOpen ? '' : (a.trip_id ?? ''),
    'shopper',
    a.shopper_id,
    'amount',
    a.amount_cents,
    'remaining',
    a.remaining_cents,
    'currency',
    a.currency,
    'txn',
    a.transaction_id ?? '',
    'idem',
    a.idempotency_key,
    'fp',
    a.fingerprint,
    'reversed',
    a.reversed_cents,
    'at_ms',
    a.decided_ms,
  ];
  if (failOpen) fields.push('fo_trip', a.trip_id ?? '', 'replayed_ms', a.replayed_ms ?? a.decided_ms);
  return fields;
}

export class Hydrator {
  readonly keys: Keys;
  private readonly scripts: ScriptRunner;

  constructor(private readonly d: HydrateDeps) {
    this.keys = new Keys(d.config.redisPrefix, d.config.partitions);
    this.scripts = new ScriptRunner(d.client, undefined, undefined);
  }

  private schemaChecked: boolean | undefined;

  private async schemaExists(): Promise<boolean> {
    if (this.schemaChecked === undefined) {
      const r = (await this.knex.raw(`select to_regclass('trips') is not null as ok`)) as {
        rows: { ok: boolean }[];
      };
      this.schemaChecked = r.rows[0]?.ok === true;
    }
    return this.schemaChecked;
  }

  private get knex() {
    return knexOf(this.d.orm);
  }

  /** Rebuilds one partition and marks it. Returns what was found in Postgres. */
  async hydratePartition(p: number, nowMs = Date.now()): Promise<PartitionCounts> {
    const counts: PartitionCounts = { trips: 0, shoppers: 0, authorizations: 0, reversals: 0 };
    if (!(await this.schemaExists())) {
      // Never migrated: nothing was ever persisted, so there is nothing to rebuild.
      await this.d.client.hset(metaKey(this.keys, p), 'initialized_ms', Date.now());
      return counts;
    }
    counts.trips = await this.trips(p, nowMs);
    counts.shoppers = await this.shoppers(p);
    counts.authorizations = await this.authorizations(p, nowMs);
    counts.reversals = await this.reversals(p, nowMs);
    counts.reversals += await this.failopenMarkers(p, nowMs);
    counts.reversals += await this.endpointClaims(p, nowMs);
    const cards = await hydrateCards(this.knex, this.scripts, this.keys, p);
    const empty = cards + counts.trips + counts.shoppers + counts.authorizations + counts.reversals === 0;
    await this.d.client.hset(metaKey(this.keys, p), empty ? 'initialized_ms' : 'hydrated_ms', Date.now());
    return counts;
  }

  private async trips(p: number, nowMs: number): Promise<number> {
    const c = this.d.config;
    const keyTtlMs = (c.tripTtlS + c.authorizationTtlS) * 1000;
    const cutoff = nowMs - keyTtlMs;
    let after = { shopper: '', trip: '' };
    let n = 0;
    for (;;) {
      // Keyset pages by trip identity (shopper_id, trip_id); a trip's keys live until its last
      // touch + key TTL.
      const res = (await this.knex.raw(
        `select t.*, greatest(t.activity_ms, coalesce(v.last_ms, 0)) as touched_ms
           from trips t
           left join lateral (
             select max(greatest(a.decided_ms, coalesce(a.replayed_ms, 0))) as last_ms from authorizations a
              where a.shopper_id = t.shopper_id and a.trip_id = t.trip_id
                and (a.reason is null or a.reason <> all(?::text[]))
           ) v on true
          where t.partition = ? and (t.shopper_id, t.trip_id) > (?, ?)
            and greatest(t.activity_ms, coalesce(v.last_ms, 0)) > ?
          order by t.shopper_id, t.trip_id
          limit ?`,
        [NOT_COUNTED_REASONS, p, after.shopper, after.trip, cutoff, PAGE_ROWS],
      )) as { rows: TripRow[] };
      if (res.rows.length === 0) return n;
      for (const t of res.rows) {
        await this.writeTrip(p, t, nowMs, keyTtlMs);
        n++;
      }
      const last = res.rows[res.rows.length - 1];
      if (last !== undefined) after = { shopper: last.shopper_id, trip: last.trip_id };
      if (res.rows.length < PAGE_ROWS) return n;
    }
  }

  private async writeTrip(_p: number, t: TripRow, nowMs: number, keyTtlMs: number): Promise<void> {
    const c = this.d.config;
    const { itemArgs, pickArgs, pickedLines } = await this.tripItems(t);
    const counted = (await this.knex.raw(
      `select authorization_id, decided_ms from authorizations
        where shopper_id = ? and trip_id = ? and (reason is null or reason <> all(?::text[]))
        order by decided_ms desc, stream_id desc limit ?`,
      [t.shopper_id, t.trip_id, NOT_COUNTED_REASONS, TRIP_AUTHORIZATIONS_KEPT],
    )) as { rows: { authorization_id: string; decided_ms: string }[] };

    const velocity = counted.rows
      .filter((a) => Number(a.decided_ms) > nowMs - VELOCITY_WINDOW_MS)
      .slice(0, c.maxSwipesPerMinute);
    // The velocity window in the layout this release's decisions write (VELOCITY_IN_TRIP_HASH).
    const inHash = velocityInHash(c) && velocity.length > 0;
    const swipeArgs = inHash ? [] : velocity.flatMap((a) => [a.decided_ms, a.authorization_id]);
    const authIds = counted.rows.map((a) => a.authorization_id);

    const fields = tripHashFields(t, pickedLines);
    if (inHash) fields.push(['vel', velocityField(velocity.map((a) => Number(a.decided_ms)))]);
    await hydrateTrip(
      { keys: this.keys, scripts: this.scripts },
      {
        shopperId: t.shopper_id,
        tripId: t.trip_id,
        expireAtMs: Number(t.touched_ms) + keyTtlMs,
        fields,
        items: itemArgs,
        picks: pickArgs,
        swipes: swipeArgs,
        authorizationIds: authIds,
      },
    );
  }

  /** The trip's ordered items and latest picks as hydrateTrip arguments (item_id / JSON pairs). */
  private async tripItems(
    t: TripRow,
  ): Promise<{ itemArgs: string[]; pickArgs: string[]; pickedLines: number }> {
    const items = (await this.knex.raw(
      `select item_id, order_id, quantity_milli, unit, unit_price_cents, estimated_cents, pick_status,
              pick_quantity_milli, pick_unit_price_cents, pick_line_cents, replacement_item_id, customer_approved
         from items where shopper_id = ? and trip_id = ? order by position`,
      [t.shopper_id, t.trip_id],
    )) as {
      rows: {
        item_id: string;
        order_id: string;
        quantity_milli: string;
        unit: string | null;
        unit_price_cents: string;
        estimated_cents: string;
        pick_status: string | null;
        pick_quantity_milli: string | null;
        pick_unit_price_cents: string | null;
        pick_line_cents: string | null;
        replacement_item_id: string | null;
        customer_approved: boolean | null;
      }[];
    };
    let pickedLines = 0;
    const itemArgs: string[] = [];
    const pickArgs: string[] = [];
    for (const it of items.rows) {
      itemArgs.push(
        it.item_id,
        JSON.stringify({
          o: it.order_id,
          q: Number(it.quantity_milli),
          p: Number(it.unit_price_cents),
          u: it.unit,
          e: Number(it.estimated_cents),
        }),
      );
      if (it.pick_status !== null) {
        if (it.pick_status !== 'not_found') pickedLines++;
        const pick: Record<string, unknown> = {
          s: it.pick_status,
          q: Number(it.pick_quantity_milli ?? 0),
          p: Number(it.pick_unit_price_cents ?? 0),
          l: Number(it.pick_line_cents ?? 0),
          a: it.customer_approved === true,
        };
        if (it.replacement_item_id !== null) pick.r = it.replacement_item_id;
        pickArgs.push(it.item_id, JSON.stringify(pick));
      }
    }
    return { itemArgs, pickArgs, pickedLines };
  }

  /** Every shopper that ever had a trip: pointer to the latest one. */
  private async shoppers(p: number): Promise<number> {
    let after = '';
    let n = 0;
    for (;;) {
      const res = (await this.knex.raw(
        `select distinct on (shopper_id) shopper_id, trip_id,
                min(created_ms) over (partition by shopper_id) as first_ms
           from trips where partition = ? and shopper_id > ?
          order by shopper_id, created_ms desc, stream_id desc
          limit ?`,
        [p, after, PAGE_ROWS],
      )) as { rows: { shopper_id: string; trip_id: string; first_ms: string }[] };
      if (res.rows.length === 0) return n;
      const pipe = this.d.client.pipeline();
      for (const r of res.rows) {
        queueScript(pipe, 'hydrateShopper', this.keys.shopper(p, r.shopper_id), r.trip_id, r.first_ms);
      }
      await this.execPipeline(pipe);
      n += res.rows.length;
      after = res.rows[res.rows.length - 1]?.shopper_id ?? after;
      if (res.rows.length < PAGE_ROWS) return n;
    }
  }

  private async execPipeline(pipe: ReturnType<RedisClient['pipeline']>): Promise<void> {
    const res = (await pipe.exec()) ?? [];
    for (const [err] of res) if (err) throw err;
  }

  private async authorizations(p: number, nowMs: number): Promise<number> {
    const c = this.d.config;
    const idemMs = c.idempotencyTtlS * 1000;
    const authMs = c.authorizationTtlS * 1000;
    // Declined decisions live idempotency_ttl_s, approved ones authorization_ttl_s.
    const oldest = nowMs - Math.max(idemMs, authMs);
    let afterMs = '0';
    let afterId = '';
    let n = 0;
    for (;;) {
      const res = (await this.knex.raw(
        `select a.*, c.cleared_cents as c_cleared, c.released_cents as c_released,
                c.cleared_at_ms as c_at_ms, c.applied_ms as c_ms,
                h.released_cents as h_released, h.applied_ms as h_ms
           from authorizations a
           left join clearings c on c.authorization_id = a.authorization_id
           left join hold_expiries h on h.authorization_id = a.authorization_id
          where a.partition = ? and greatest(a.decided_ms, coalesce(a.replayed_ms, 0)) > ?
          and (a.decided_ms, a.authorization_id) > (?::bigint, ?)
          order by a.decided_ms, a.authorization_id limit ?`,
        [p, oldest, afterMs, afterId, PAGE_ROWS],
      )) as { rows: AuthRow[] };
      if (res.rows.length === 0) return n;
      const pipe = this.d.client.pipeline();
      for (const a of res.rows) if (this.queueAuthorization(pipe, p, a, nowMs)) n++;
      await this.execPipeline(pipe);
      const last = res.rows[res.rows.length - 1];
      if (last === undefined || res.rows.length < PAGE_ROWS) return n;
      afterMs = last.decided_ms;
      afterId = last.authorization_id;
    }
  }

  /**
   * One authorization's keys (auth hash, idem, sig, and its clearing or hold-expiry replay key),
   * queued on `pipe` with the TTLs they had; false when it had expired already.
   */
  private queueAuthorization(pipe: Pipeline, p: number, a: AuthRow, nowMs: number): boolean {
    const c = this.d.config;
    const idemMs = c.idempotencyTtlS * 1000;
    const authMs = c.authorizationTtlS * 1000;
    const sigMs = 2 * c.signatureToleranceS * 1000;
    // A replayed fail-open approval was written (and its TTLs set) at replay time.
    const at = a.replayed_ms !== null ? Number(a.replayed_ms) : Number(a.decided_ms);
    const authExp = at + (a.decision === 'approved' ? authMs : idemMs);
    if (authExp <= nowMs) return false;
    const fields = authHashFields(a);
    if (a.c_cleared !== null) {
      // Cleared: the auth holds nothing; the clr: key replays the clearing (lua/clearAuthorization-3.lua).
      fields.push('cleared', a.c_cleared, 'cleared_ms', a.c_ms ?? '', 'cleared_at_ms', a.c_at_ms ?? '');
      this.queueClearingReplay(pipe, p, a, authExp);
    }
    if (a.h_released !== null) {
      // Expired: released once; the hx: marker keeps a second release a no-op (lua/expireHold-3.lua).
      fields.push('expired', a.h_released, 'expired_ms', a.h_ms ?? '');
      pipe.call('SET', [this.keys.holdExpiry(p, a.authorization_id), a.h_released, 'PXAT', authExp]);
    }
    const idemExp = at + idemMs > nowMs ? at + idemMs : '';
    const sigExp = a.signature !== null && at + sigMs > nowMs ? at + sigMs : '';
    queueScript(
      pipe,
      'hydrateAuth',
      `${this.keys.base(p)}auth:${a.authorization_id}`,
      this.keys.idem(p, a.idempotency_key),
      this.keys.sig(p, a.signature ?? '-'),
      a.authorization_id,
      authExp,
      idemExp,
      sigExp,
      fields.length / 2,
      ...fields,
    );
    return true;
  }

  /** The clr: key of a cleared authorization: a repeated clearing gets the first answer. */
  private queueClearingReplay(pipe: Pipeline, p: number, a: AuthRow, authExp: number): void {
    pipe.call('SET', [
      this.keys.clearing(p, a.transaction_id ?? ''),
      JSON.stringify({
        shopper: a.shopper_id,
        txn: a.transaction_id,
        state: {
          authorization_id: a.authorization_id,
          transaction_id: a.transaction_id,
          trip_id: a.trip_id ?? '',
          currency: a.currency,
          amount_cents: Number(a.amount_cents),
          reversed_cents: Number(a.reversed_cents),
          released_cents: Number(a.c_released),
          cleared_cents: Number(a.c_cleared),
          held_cents: 0,
          cleared_at_ms: Number(a.c_at_ms),
          status: 'cleared',
        },
      }),
      'PXAT',
      authExp,
    ]);
  }

  /**
   * One endpoint per signature (CONTRACT §1): the `sig:<v1>` claims of the
   * reversals and clearings accepted within 2 x signature_tolerance_s, so the
   * same signed bytes stay refused on the other endpoints after a data loss.
   * SET NX: a claim written since the loss wins.
   */
  private async endpointClaims(p: number, nowMs: number): Promise<number> {
    const sigMs = 2 * this.d.config.signatureToleranceS * 1000;
    const res = (await this.knex.raw(
      `select 'reversals' as endpoint, signature, applied_ms from reversals
        where partition = ? and signature is not null and applied_ms > ?
       union all
       select 'clearings', signature, applied_ms from clearings
        where partition = ? and signature is not null and applied_ms > ?`,
      [p, nowMs - sigMs, p, nowMs - sigMs],
    )) as { rows: { endpoint: string; signature: string; applied_ms: string }[] };
    return this.setEachNx(res.rows, (r) => [
      this.keys.sig(p, r.signature),
      `ep:${r.endpoint}`,
      Number(r.applied_ms) + sigMs,
    ]);
  }

  /** Fail-open replay markers `fo:<authorization_id>` = outcome, so a journal entry is never replayed twice. */
  private async failopenMarkers(p: number, nowMs: number): Promise<number> {
    const ttlMs = this.d.config.idempotencyTtlS * 1000;
    const res = (await this.knex.raw(
      `select distinct on (authorization_id) authorization_id, outcome, replayed_ms from failopen_replays
        where partition = ? and replayed_ms > ? order by authorization_id, replayed_ms`,
      [p, nowMs - ttlMs],
    )) as { rows: { authorization_id: string; outcome: string; replayed_ms: string }[] };
    return this.setEachNx(res.rows, (r) => [
      `${this.keys.base(p)}fo:${r.authorization_id}`,
      r.outcome,
      Number(r.replayed_ms) + ttlMs,
    ]);
  }

  /** SET <key> <value> PXAT <expiry> NX for each row, one pipeline per page; returns the row count. */
  private async setEachNx<R>(
    rows: readonly R[],
    entry: (row: R) => [key: string, value: string, expiresAtMs: number],
  ): Promise<number> {
    for (let i = 0; i < rows.length; i += PAGE_ROWS) {
      const pipe = this.d.client.pipeline();
      for (const r of rows.slice(i, i + PAGE_ROWS)) {
        const [key, value, expiresAtMs] = entry(r);
        pipe.call('SET', [key, value, 'PXAT', expiresAtMs, 'NX']);
      }
      await this.execPipeline(pipe);
    }
    return rows.length;
  }

  /** Reversal replay keys: `rev:<sha256([transaction_id, reversal_id])[:40]>` = {requested, shopper, txn, state}. */
  private async reversals(p: number, nowMs: number): Promise<number> {
    const ttlMs = this.d.config.authorizationTtlS * 1000;
    let afterMs = '0';
    let afterId = '';
    let n = 0;
    for (;;) {
      const res = (await this.knex.raw(
        `select r.event_id, r.reversal_key, r.authorization_id, r.transaction_id, r.shopper_id, r.trip_id,
                r.amount_cents, r.reversed_cents,
                r.held_cents, r.requested, r.applied_ms, a.amount_cents as auth_amount_cents
           from reversals r left join authorizations a on a.authorization_id = r.authorization_id
          where r.partition = ? and r.applied_ms > ? and (r.applied_ms, r.event_id) > (?::bigint, ?)
          order by r.applied_ms, r.event_id limit ?`,
        [p, nowMs - ttlMs, afterMs, afterId, PAGE_ROWS],
      )) as {
        rows: {
          event_id: string;
          reversal_key: string;
          authorization_id: string;
          transaction_id: string | null;
          shopper_id: string;
          trip_id: string | null;
          amount_cents: string;
          reversed_cents: string;
          held_cents: string;
          requested: string | null;
          applied_ms: string;
          auth_amount_cents: string | null;
        }[];
      };
      if (res.rows.length === 0) return n;
      const pipe = this.d.client.pipeline();
      for (const r of res.rows) {
        const held = Number(r.held_cents);
        const state = {
          authorization_id: r.authorization_id,
          transaction_id: r.transaction_id,
          trip_id: r.trip_id,
          amount_cents: Number(r.auth_amount_cents ?? Number(r.reversed_cents) + held),
          reversed_cents: Number(r.reversed_cents),
          held_cents: held,
          status: held === 0 ? 'reversed' : 'partially_reversed',
        };
        // The event does not carry the requested amount yet: a reversal that emptied the hold is
        // taken as "everything" (''), any other as the released amount. See docs/persister.md.
        const requested = r.requested ?? (held === 0 ? '' : String(Number(r.amount_cents)));
        const txn = r.transaction_id ?? '';
        const reversalId = r.reversal_key.startsWith(`${txn}:`) ? r.reversal_key.slice(txn.length + 1) : '-';
        pipe.call('SET', [
          this.keys.reversal(p, txn, reversalId),
          JSON.stringify({ requested, shopper: r.shopper_id, txn, state }),
          'PXAT',
          Number(r.applied_ms) + ttlMs,
          'NX',
        ]);
        n++;
      }
      await this.execPipeline(pipe);
      const last = res.rows[res.rows.length - 1];
      if (last === undefined || res.rows.length < PAGE_ROWS) return n;
      afterMs = last.applied_ms;
      afterId = last.event_id;
    }
  }
}

/**
 * Rebuilds every partition whose `meta` is missing. Two processes doing it at
 * once is harmless (write-if-absent); a short per-partition lock avoids the
 * double work. Returns the number of partitions rebuilt from Postgres data.
 */
export async function hydrateMissing(
  deps: Omit<HydrateDeps, 'orm'> & { readonly orm: () => Promise<Orm> },
  options: { force?: boolean; lockMs?: number } = {},
): Promise<{ hydratedPartitions: number; initializedPartitions: number }> {
  const { config, client, logger } = deps;
  const keys = new Keys(config.redisPrefix, config.partitions);
  const lockMs = options.lockMs ?? 120_000;
  const res = await runBatch(
    client,
    Array.from({ length: config.partitions }, (_, p): BatchCall => ['EXISTS', [metaKey(keys, p)]]),
  );
  const missing: number[] = [];
  res.forEach(([err, n], p) => {
    if (err) throw err;
    if (options.force || Number(n) === 0) missing.push(p);
  });
  let hydrated = 0;
  let initialized = 0;
  if (missing.length === 0) return { hydratedPartitions: 0, initializedPartitions: 0 };
  const orm = await deps.orm();
  const hydrator = new Hydrator({ config, client, logger, orm });
  const started = Date.now();
  for (const p of missing) {
    const lock = hydrateLockKey(keys, p);
    const got = await client.set(lock, String(process.pid), 'PX', lockMs, 'NX');
    if (got !== 'OK') {
      // Another process is rebuilding this partition: wait for its mark (bounded), then check again.
      const deadline = Date.now() + lockMs;
      while (
        Date.now() < deadline &&
        (await client.exists(metaKey(keys, p))) === 0 &&
        (await client.exists(lock)) === 1
      ) {
        await new Promise((r) => setTimeout(r, 100));
      }
      if ((await client.exists(metaKey(keys, p))) === 1 && !options.force) continue;
    }
    try {
      const counts = await hydrator.hydratePartition(p);
      const empty = counts.trips + counts.shoppers + counts.authorizations + counts.reversals === 0;
      if (empty) initialized++;
      else {
        hydrated++;
        logger.info({ partition: p, ...counts }, 'partition hydrated from Postgres');
      }
    } finally {
      await client.del(lock);
    }
  }
  logger.info({ hydrated, initialized, ms: Date.now() - started }, 'hydrate check done');
  return { hydratedPartitions: hydrated, initializedPartitions: initialized };
}

/** Queues one script call (keys, then ARGV) on a pipeline; registerScripts defined the command. */
/** The trip hash as authorizeSwipe and the trip API read it (docs/redis-layout.md). */
function tripHashFields(t: TripRow, pickedLines: number): [string, string | number][] {
  const fields: [string, string | number][] = [
    ['shopper', t.shopper_id],
    ['status', t.status],
    ['spec_hash', t.spec_hash ?? ''],
    ['spec', t.spec ?? ''],
    ['picked_cents', t.picked_cents],
    ['picked_lines', pickedLines],
    ['approved_cents', t.approved_cents],
    ['reversed_cents', t.reversed_cents],
    ['authorized_cents', t.authorized_cents],
    ['created_ms', t.created_ms],
    ['activity_ms', t.activity_ms],
    ['currency', t.currency],
    ['m_name', normalizeMerchantName(t.merchant_name)],
    ['m_addr', normalizeAddress(t.merchant_address)],
    ['lat', t.merchant_lat ?? ''],
    ['lng', t.merchant_lng ?? ''],
    ['tax_bps', t.tax_rate_bps],
    ['tol_bps', t.tolerance_bps],
    ['tol_cents', t.tolerance_cents],
    ['hold_cents', t.hold_cents ?? -1],
    ['est_cents', t.estimated_cents],
    ...storeEvidenceFromSpec(t.spec),
  ];
  if (t.closed_ms !== null) fields.push(['closed_ms', t.closed_ms]);
  return fields;
}

type Pipeline = ReturnType<RedisClient['pipeline']>;

function queueScript(pipe: Pipeline, name: ScriptName, ...args: unknown[]): void {
  const command = (pipe as unknown as Record<string, ((...a: unknown[]) => unknown) | undefined>)[
    pipelineCommandName(name)
  ];
  if (command === undefined) throw new Error(`script ${name} is not registered on this client`);
  command.apply(pipe, args);
}
