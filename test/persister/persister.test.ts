// The persister against the shared Redis (unique prefix) and shared Postgres
// (fresh database): exactly-once effect, redelivery, poison events, trimming,
// several persisters sharing partitions.
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Config, loadConfig } from '../../src/config/config.js';
import { createMetrics, type Metrics } from '../../src/observability/metrics.js';
import { connectRedis, createRedisClient, type RedisClient } from '../../src/redis/client.js';
import { CONSUMER_GROUP, Persister } from '../../src/persister/consumer.js';
import { testLogger } from './helpers/log.js';
import { createTestDb, type TestDb } from './helpers/pg.js';
import { cleanPrefix, monitorClient, plainClient, uniquePrefix } from './helpers/redis.js';
import { type TripModel, WalWriter } from './helpers/wal.js';
import { waitFor as waitUntil } from '../helpers/waitFor.js';

const waitFor = (what: string, fn: () => Promise<boolean>, timeoutMs = 20_000) =>
  waitUntil(what, fn, timeoutMs);

const PARTITIONS = 4;
const logger = testLogger();

let db: TestDb;
let redis: Redis;
let config: Config;
const running: { p: Persister; clients: RedisClient[] }[] = [];

async function startPersister(
  metrics: Metrics = createMetrics({ defaultMetrics: false }),
  cfg: Config = config,
) {
  const streamClient = createRedisClient(cfg, { name: 't-stream', commandTimeoutMs: 10_000 });
  const controlClient = createRedisClient(cfg, { name: 't-control', commandTimeoutMs: 10_000 });
  await connectRedis(streamClient);
  await connectRedis(controlClient);
  const p = new Persister({ config: cfg, logger, metrics, orm: db.orm, streamClient, controlClient });
  await p.start();
  running.push({ p, clients: [streamClient, controlClient] });
  return p;
}

async function stopAll() {
  for (const r of running.splice(0)) {
    await r.p.stop();
    for (const c of r.clients) c.disconnect();
  }
}

async function count(table: string): Promise<number> {
  const r = await db.query<{ n: string }>(`select count(*) as n from ${table}`);
  return Number(r[0]?.n);
}

async function expectTripsMatch(models: Iterable<TripModel>) {
  for (const t of models) {
    const [row] = await db.query<Record<string, string>>('select * from trips where trip_id = ?', [t.tripId]);
    expect(row, t.tripId).toBeDefined();
    expect({
      picked: Number(row?.picked_cents),
      approved: Number(row?.approved_cents),
      reversed: Number(row?.reversed_cents),
      authorized: Number(row?.authorized_cents),
      status: row?.status,
    }).toEqual({
      picked: t.picked,
      approved: t.approved,
      reversed: t.reversed,
      authorized: t.authorized,
      status: t.status,
    });
  }
}

/** A fresh namespace on the test database; short bounds so the failure paths run fast. */
function testConfig(overrides: Record<string, string>): Config {
  return loadConfig({
    NODE_ENV: 'test',
    REDIS_PREFIX: uniquePrefix(),
    PARTITIONS: String(PARTITIONS),
    DATABASE_URL: db.url,
    PERSISTER_BATCH_EVENTS_MAX: '200',
    PERSISTER_BLOCK_MS: '50',
    PERSISTER_CLAIM_IDLE_MS: '300',
    PERSISTER_DELIVERIES_MAX: '3',
    PERSISTER_LEASE_MS: '900',
    SHUTDOWN_GRACE_MS: '2000',
    SIGNATURE_SECRETS: 'test-signature-secret-0123456789',
    API_TOKENS: 'test-api-token-0123456789abcdef',
    ...overrides,
  });
}

beforeAll(async () => {
  db = await createTestDb();
  redis = plainClient();
  config = testConfig({});
});

afterEach(stopAll);

afterAll(async () => {
  await stopAll();
  await cleanPrefix(redis, config.redisPrefix);
  redis.disconnect();
  await db.drop();
});

describe('persister', () => {
  it('writes every event exactly once and per-trip totals equal the model', async () => {
    const w = new WalWriter(redis, config.redisPrefix, PARTITIONS);
    for (let i = 0; i < 12; i++) await w.life(`shopper-a${i}`, `trip-a${i}`, i % 3 === 0);
    const metrics = createMetrics({ defaultMetrics: false });
    const p = await startPersister(metrics);
    // The rows are visible at COMMIT; the persister counts a batch only after its XACK.
    await waitFor(
      'all events',
      async () => (await count('applied_events')) === w.events && p.committedEvents >= w.events,
    );
    expect(p.committedEvents).toBe(w.events);
    expect(await count('authorizations')).toBe(12 * 3);
    expect(await count('reversals')).toBe(12);
    expect(await count('items')).toBe(12 * 3);
    await expectTripsMatch(w.trips.values());
    // Picks: the later update replaced the earlier one.
    const [pick] = await db.query<Record<string, string>>(
      `select * from items where trip_id = 'trip-a1' and item_id = 'item-0'`,
    );
    expect(Number(pick?.pick_quantity_milli)).toBe(500);
    // Acked and trimmed: nothing pending, streams empty.
    await waitFor('trimmed', async () => {
      let len = 0;
      for (let part = 0; part < PARTITIONS; part++) len += await redis.xlen(w.keys.wal(part));
      return len === 0;
    });
    const metricsText = await metrics.registry.metrics();
    expect(metricsText).toMatch(/persister_events_total\{type="authorization.decided"\} 36/);
    expect(metricsText).toMatch(/persister_batch_duration_seconds_count \d+/);
    await stopAll();
  });

  it('redelivered events (same event id, new stream entry) change nothing', async () => {
    const w = new WalWriter(redis, config.redisPrefix, PARTITIONS);
    const t = await w.trip('shopper-dup', 'trip-dup');
    await w.pick(t, 'item-0', 1000);
    const eventId = randomUUID();
    const d = {
      authorization_id: randomUUID(),
      idempotency_key: 't:dup',
      fingerprint: 'x',
      signature: null,
      status: 200,
      transaction_id: 'dup',
      shopper_id: t.shopperId,
      trip_id: t.tripId,
      decision: 'approved',
      reason: null,
      mode: 'normal',
      amount_cents: 100,
      remaining_cents: 5,
      authorized_cents: 100,
      currency: 'USD',
      merchant_name: 'Safeway',
      merchant_address: '123 Main St',
      lat: null,
      lng: null,
      at_ms: Date.now(),
    };
    t.approved += 100;
    t.authorized += 100;
    await w.xadd(t.partition, 'authorization.decided', d, eventId);
    await w.xadd(t.partition, 'authorization.decided', d, eventId);
    await w.xadd(t.partition, 'authorization.decided', d, eventId);
    const before = await count('applied_events');
    await startPersister();
    await waitFor('drained', async () => (await redis.xlen(w.keys.wal(t.partition))) === 0);
    expect(await count('applied_events')).toBe(before + 3);
    await expectTripsMatch([t]);
    await stopAll();
  });

  it('a poison event is dead-lettered after N deliveries and the partition keeps moving', async () => {
    const w = new WalWriter(redis, config.redisPrefix, PARTITIONS);
    const t = await w.trip('shopper-poison', 'trip-poison');
    const badId = randomUUID();
    await w.xadd(t.partition, 'item.updated', '{"trip_id": "trip-poison", not json', badId);
    // A well-formed event that violates the data: an item the trip never had.
    const orphanId = randomUUID();
    await w.xadd(
      t.partition,
      'item.updated',
      {
        trip_id: t.tripId,
        shopper_id: t.shopperId,
        item_id: 'no-such-item',
        status: 'picked',
        quantity_milli: 1000,
        unit_price_cents: 100,
        line_cents: 100,
        replacement_item_id: null,
        customer_approved: false,
        picked_cents: 100,
        at_ms: Date.now(),
      },
      orphanId,
    );
    await w.pick(t, 'item-1', 1000);
    await w.swipe(t, 10, true);
    // A second decision for a transaction id already decided (another partition's shopper in real life).
    const other = await w.trip('shopper-poison-2', 'trip-poison-2');
    const dupTxnId = randomUUID();
    await w.xadd(
      other.partition,
      'authorization.decided',
      {
        authorization_id: randomUUID(),
        idempotency_key: 't:x',
        fingerprint: 'x',
        signature: null,
        status: 402,
        transaction_id: `txn_${t.auths[0]?.id}`,
        shopper_id: other.shopperId,
        trip_id: other.tripId,
        decision: 'declined',
        reason: 'NO_ITEMS_PICKED',
        mode: 'normal',
        amount_cents: 10,
        remaining_cents: 0,
        authorized_cents: 0,
        currency: 'USD',
        merchant_name: 'S',
        merchant_address: 'A',
        lat: null,
        lng: null,
        at_ms: Date.now(),
      },
      dupTxnId,
    );
    const metrics = createMetrics({ defaultMetrics: false });
    await startPersister(metrics);
    await waitFor('dead letters', async () => (await count('dead_letters')) >= 3);
    const dead = await db.query<Record<string, string>>('select * from dead_letters order by stream_id');
    expect(dead.filter((r) => r.event_id === badId || r.event_id === orphanId).length).toBe(2);
    // Two partitions decided one transaction id: whichever is written second is dead-lettered (partitions have no
    // order between them), and the first is the authorization of record.
    const dupDead = dead.filter((r) => r.event_id !== badId && r.event_id !== orphanId);
    expect(dupDead.length).toBe(1);
    expect(dupDead[0]?.error).toMatch(/authorizations_transaction_id_unique/);
    expect(
      await db.query('select 1 from authorizations where transaction_id = ?', [`txn_${t.auths[0]?.id}`]),
    ).toHaveLength(1);
    if (dupDead[0]?.event_id !== dupTxnId) {
      // The model's approval lost the race: take it out of the expected totals.
      t.approved -= 10;
      t.authorized -= 10;
    }
    for (const r of dead) expect(Number(r.deliveries)).toBeGreaterThanOrEqual(config.persisterDeliveriesMax);
    expect(dead.find((r) => r.event_id === badId)?.error).toMatch(/not valid JSON/);
    expect(dead.find((r) => r.event_id === orphanId)?.error).toMatch(/unknown item/);
    await waitFor('partition drained', async () => (await redis.xlen(w.keys.wal(t.partition))) === 0);
    await expectTripsMatch([t]);
    const deadStreams = new Set([t.partition, other.partition]);
    let deadEntries = 0;
    for (const p of deadStreams) deadEntries += await redis.xlen(`${w.keys.base(p)}wal:dead`);
    expect(deadEntries).toBe(3);
    const pending = (await redis.xpending(w.keys.wal(t.partition), CONSUMER_GROUP)) as [number];
    expect(pending[0]).toBe(0);
    expect(await metrics.registry.metrics()).toMatch(/persister_dead_letters_total 3/);
    await stopAll();
  });

  it('fail-open replays: applied ones count against the trip once, others are only recorded', async () => {
    const w = new WalWriter(redis, config.redisPrefix, PARTITIONS);
    const t = await w.trip('shopper-fo', 'trip-fo');
    await w.pick(t, 'item-0', 1000);
    const base = {
      idempotency_key: 't:fo',
      fingerprint: 'fp',
      signature: null,
      status: 200,
      shopper_id: t.shopperId,
      decision: 'approved',
      reason: null,
      mode: 'fail_open',
      amount_cents: 70,
      remaining_cents: 0,
      currency: 'USD',
      merchant_name: 'Safeway',
      merchant_address: '123 Main St',
      lat: null,
      lng: null,
      at_ms: Date.now() - 5000,
      replayed_ms: Date.now(),
    };
    const applied = randomUUID();
    t.approved += 70;
    t.authorized += 70;
    const foEvent = {
      ...base,
      authorization_id: applied,
      transaction_id: 'fo-1',
      trip_id: t.tripId,
      authorized_cents: t.authorized,
      replay_outcome: 'applied',
      redis_authorization_id: null,
      redis_decision: null,
      redis_reason: null,
    };
    const foEventId = randomUUID();
    await w.xadd(t.partition, 'failopen.replayed', foEvent, foEventId);
    await w.xadd(t.partition, 'failopen.replayed', foEvent, foEventId); // a repeated replay: same event id
    await w.xadd(t.partition, 'failopen.replayed', {
      ...base,
      authorization_id: randomUUID(),
      transaction_id: 'fo-2',
      trip_id: null,
      authorized_cents: null,
      replay_outcome: 'conflict',
      redis_authorization_id: 'auth-x',
      redis_decision: 'declined',
      redis_reason: 'AMOUNT_EXCEEDS_ALLOWANCE',
    });
    await startPersister();
    await waitFor('drained', async () => (await count('failopen_replays')) === 2);
    await expectTripsMatch([t]);
    const [row] = await db.query<Record<string, string>>(
      'select * from authorizations where authorization_id = ?',
      [applied],
    );
    expect(row?.mode).toBe('fail_open');
    expect(row?.trip_id).toBe(t.tripId);
    expect(Number(row?.replayed_ms)).toBe(base.replayed_ms);
    expect(await db.query(`select * from authorizations where transaction_id = 'fo-2'`)).toEqual([]);
    // applied_events lists the replay once: its authorization row (same event id) is not a decision's claim.
    const listed = await db.query<{ type: string; n: string }>(
      'select type, count(*) as n from applied_events where event_id = ? group by type',
      [foEventId],
    );
    expect(listed).toEqual([{ type: 'failopen.replayed', n: '1' }]);
  });

  it('two persisters share the partitions and still write each event once', async () => {
    const a = await startPersister();
    const b = await startPersister();
    await waitFor(
      'leases split',
      async () =>
        a.leases.owned().length + b.leases.owned().length === PARTITIONS &&
        a.leases.owned().length > 0 &&
        b.leases.owned().length > 0,
      10_000,
    );
    const overlap = a.leases.owned().filter((p) => b.leases.owned().includes(p));
    expect(overlap).toEqual([]);
    const w = new WalWriter(redis, config.redisPrefix, PARTITIONS);
    const before = await count('applied_events');
    for (let i = 0; i < 20; i++) await w.life(`shopper-b${i}`, `trip-b${i}`, i % 2 === 0);
    await waitFor('all events', async () => (await count('applied_events')) === before + w.events);
    await expectTripsMatch(w.trips.values());
    // One of them stops: the other takes its partitions over and keeps writing.
    await running[0]?.p.stop();
    const w2 = new WalWriter(redis, config.redisPrefix, PARTITIONS);
    for (let i = 0; i < 8; i++) await w2.life(`shopper-c${i}`, `trip-c${i}`, false);
    await waitFor(
      'taken over',
      async () => (await count('applied_events')) === before + w.events + w2.events,
      20_000,
    );
    await expectTripsMatch(w2.trips.values());
    await stopAll();
  });

  it('reads a backlog in Redis calls of at most PERSISTER_READ_ENTRIES_MAX entries, into batches of many calls', async () => {
    const READ_MAX = 10;
    const cfg = testConfig({ PERSISTER_READ_ENTRIES_MAX: String(READ_MAX) });
    const reads: { count: number; streams: number; entriesAsked: number }[] = [];
    const monitor = await monitorClient((args) => {
      if (args[0]?.toUpperCase() !== 'XREADGROUP' && args[0]?.toUpperCase() !== 'XAUTOCLAIM') return;
      if (!args.some((a) => a.startsWith(cfg.redisPrefix))) return;
      const at = args.findIndex((a) => a.toUpperCase() === 'COUNT');
      const n = Number(args[at + 1]);
      const streams =
        args[0].toUpperCase() === 'XAUTOCLAIM' ? 1 : (args.length - args.indexOf('STREAMS') - 1) / 2;
      reads.push({ count: n, streams, entriesAsked: n * streams });
    });
    try {
      const w = new WalWriter(redis, cfg.redisPrefix, PARTITIONS);
      for (let i = 0; i < 120; i++) await w.life(`shopper-r${i}`, `trip-r${i}`, i % 3 === 0);
      const before = await count('applied_events');
      const metrics = createMetrics({ defaultMetrics: false });
      const p = await startPersister(metrics, cfg);
      await waitFor('all events', async () => (await count('applied_events')) === before + w.events, 20_000);
      await expectTripsMatch(w.trips.values());
      expect(p.committedEvents).toBe(w.events);
      // Every read stayed within the bound...
      expect(reads.length).toBeGreaterThan(w.events / READ_MAX);
      expect(Math.max(...reads.map((r) => r.entriesAsked))).toBeLessThanOrEqual(READ_MAX);
      // ...and the batches were still large: many reads each.
      const batches = (await metrics.persisterBatchDuration.get()).values.find(
        (v) => v.metricName === 'persister_batch_duration_seconds_count',
      )?.value;
      expect(batches).toBeGreaterThan(0);
      expect(w.events / (batches ?? 1)).toBeGreaterThan(3 * READ_MAX);
    } finally {
      monitor.close();
      await stopAll();
      await cleanPrefix(redis, cfg.redisPrefix);
    }
  });

  it('a persister joining during a backlog takes its partitions over without waiting for abandoned entries to idle', async () => {
    // Claim idle far beyond the wait below: nothing may depend on XAUTOCLAIM here.
    const cfg = testConfig({
      PERSISTER_BATCH_EVENTS_MAX: '40',
      PERSISTER_CLAIM_IDLE_MS: '120000',
      PERSISTER_LEASE_MS: '600',
    });
    try {
      const w = new WalWriter(redis, cfg.redisPrefix, PARTITIONS);
      for (let i = 0; i < 300; i++) await w.life(`shopper-j${i}`, `trip-j${i}`, i % 3 === 0);
      const before = await count('applied_events');
      const a = await startPersister(undefined, cfg);
      await waitFor('first batches', async () => (await count('applied_events')) > before);
      const b = await startPersister(undefined, cfg);
      await waitFor('leases split', async () => a.leases.owned().length > 0 && b.leases.owned().length > 0);
      // The first one had entries of the partitions it gave up in flight (prefetched):
      // they must not sit pending until the 120 s claim-idle bound.
      expect(await count('applied_events')).toBeLessThan(before + w.events);
      await waitFor('all events', async () => (await count('applied_events')) === before + w.events, 20_000);
      await expectTripsMatch(w.trips.values());
    } finally {
      await stopAll();
      await cleanPrefix(redis, cfg.redisPrefix);
    }
  });
});
