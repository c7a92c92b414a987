// A trip belongs to its shopper (CONTRACT §3): the same trip id under many
// shoppers, several of them in one partition, with different bodies, stays
// that many trips in Redis, in Postgres and after Redis loses every key and
// hydrate rebuilds it — on a standalone Redis and on a Redis Cluster.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureHydrated, startPersister } from '../../src/persister/commands.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { safewayTrip, startTestApi, swipeBody, type TestApi } from '../helpers/api.js';
import { type PrivateCluster, startRedisCluster } from '../helpers/redisCluster.js';
import { testLogger } from './helpers/log.js';
import { createTestDb, type TestDb } from './helpers/pg.js';
import { cleanPrefix, plainClient } from './helpers/redis.js';
import { expectSameState, type Snapshot, snapshot } from './helpers/snapshot.js';

const TRIP = 'T1';
const SHOPPERS = 20;
const PARTITIONS = 4;
const logger = testLogger();

interface Shopper {
  readonly id: string;
  readonly body: Record<string, unknown>;
  readonly merchant: { name: string; address: string };
  approved?: ReturnType<typeof swipeBody>;
}

/** 20 shoppers, one trip id, bodies that differ in store, tax, hold and items. */
function shoppers(): Shopper[] {
  const out: Shopper[] = [];
  for (let i = 0; i < SHOPPERS; i++) {
    const even = i % 2 === 0;
    const merchant = even
      ? { name: 'Safeway', address: '123 Main St' }
      : { name: 'Trader Joes', address: `${50 + i} Oak Ave` };
    const items = [{ item_id: 'milk', quantity: 10, unit_price: `${3 + (i % 4)}.49` }];
    if (i % 3 === 0) items.push({ item_id: `bread-${i}`, quantity: 2, unit_price: '2.50' });
    out.push({
      id: `idshopper${i}`,
      merchant,
      body: safewayTrip({
        merchant: { ...merchant, lat: 37.77, lng: -122.41 },
        tax_rate_bps: 100 * i,
        hold_cents: i % 5 === 0 ? 1500 + i : undefined,
        orders: [{ order_id: 'o-1', items }],
      }),
    });
  }
  return out;
}

function swipeAt(s: Shopper, amount: string): ReturnType<typeof swipeBody> {
  return swipeBody(s.id, amount, { merchant: s.merchant });
}

/** Every shopper creates, picks, swipes (one approval, one decline) and some reverse. */
async function shop(h: TestApi, all: Shopper[]): Promise<void> {
  for (const s of all) expect((await h.putTrip(s.id, TRIP, s.body)).status).toBe(201);
  // An identical body is 200 for every shopper, also next to same-id trips in its partition.
  for (const s of all) expect((await h.putTrip(s.id, TRIP, s.body)).status).toBe(200);
  const other = all[1] as Shopper;
  const conflict = await h.putTrip(other.id, TRIP, { ...other.body, tax_rate_bps: 1 });
  expect(conflict.status).toBe(409);
  expect(conflict.json).toEqual({
    error: 'trip_conflict',
    message: `trip ${TRIP} of shopper ${other.id} exists with a different body: tax_rate_bps differs`,
  });
  for (const [i, s] of all.entries()) {
    const pick = await h.pick(s.id, TRIP, 'milk', { status: 'picked', quantity: 2 + (i % 5) });
    expect(pick.status).toBe(200);
    const ok = swipeAt(s, `${1 + (i % 4)}.00`);
    const approved = await h.swipe(ok);
    expect(approved.status, `shopper ${s.id}`).toBe(200);
    expect(approved.json['trip_id']).toBe(TRIP);
    s.approved = ok;
    const declined = await h.swipe(swipeAt(s, '900.00'));
    expect(declined.json['reason']).toBe('AMOUNT_EXCEEDS_ALLOWANCE');
    if (i % 3 === 0) {
      const r = await h.reverse({ transaction_id: ok.transaction_id, shopper_id: s.id, amount: '0.50' });
      expect(r.status).toBe(200);
    }
  }
}

/** Hash values that are JSON (items, picks), decoded: field order is not state. */
function parsed(h: Record<string, string>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(h).map(([k, v]) => [k, JSON.parse(v)]));
}

/** What Redis holds for one shopper's trip, read key by key (works on a Cluster too). */
async function redisTrip(h: TestApi, shopperId: string): Promise<Record<string, unknown>> {
  const key = h.keys.trip(h.keys.partition(shopperId), shopperId, TRIP);
  const r = h.redis;
  const view = await h.getTrip(shopperId, TRIP);
  expect(view.status).toBe(200);
  return {
    view: view.json,
    trip: await r.hgetall(key),
    items: parsed(await r.hgetall(`${key}:items`)),
    picks: parsed(await r.hgetall(`${key}:picks`)),
    auths: await r.lrange(`${key}:auths`, 0, -1),
    swipes: await r.zrange(`${key}:swipes`, '0', '-1', 'WITHSCORES'),
  };
}

/** What Postgres holds for one shopper's trip, and that it agrees with Redis. */
async function postgresTrip(db: TestDb, shopperId: string): Promise<Record<string, unknown>> {
  const [trip] = await db.query<Record<string, string>>(
    'select * from trips where shopper_id = ? and trip_id = ?',
    [shopperId, TRIP],
  );
  const items = await db.query('select * from items where shopper_id = ? and trip_id = ? order by item_id', [
    shopperId,
    TRIP,
  ]);
  const auths = await db.query<{ authorization_id: string; amount_cents: string; decision: string }>(
    `select authorization_id, decision, reason, amount_cents, reversed_cents, shopper_id, trip_id
       from authorizations where shopper_id = ? and trip_id = ? order by decided_ms, authorization_id`,
    [shopperId, TRIP],
  );
  const [holds] = await db.query<{ cents: string }>(
    `select coalesce(sum(amount_cents), 0)::text as cents from ledger_entries where account_id = ?`,
    [`card_holds:${shopperId}`],
  );
  return { trip, items, auths, holds: holds?.cents };
}

async function waitFor(what: string, fn: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * The whole scenario on one api: shop, persist, compare Postgres with Redis per shopper, lose
 * every key (`loseEverything`), hydrate, and find every trip exactly as before.
 */
async function scenario(
  h: TestApi,
  db: TestDb,
  loseEverything: () => Promise<void>,
  rebuilt: () => Promise<void> = async () => undefined,
): Promise<void> {
  const all = shoppers();
  const byPartition = new Map<number, number>();
  for (const s of all) {
    const p = h.keys.partition(s.id);
    byPartition.set(p, (byPartition.get(p) ?? 0) + 1);
  }
  expect(Math.max(...byPartition.values())).toBeGreaterThanOrEqual(4);

  const persister = await startPersister(h.config, logger, createMetrics({ defaultMetrics: false }));
  try {
    await shop(h, all);
    // A trip, a pick and two decisions per shopper; a reversal for every third.
    const events = SHOPPERS * 4 + Math.ceil(SHOPPERS / 3);
    await waitFor('every event in Postgres', async () => {
      const [row] = await db.query<{ n: string }>('select count(*) as n from applied_events');
      return Number(row?.n) === events;
    });
  } finally {
    await persister.stop();
  }
  expect(await db.query('select * from dead_letters')).toEqual([]);
  expect(await db.query('select count(*)::int as n from trips')).toEqual([{ n: SHOPPERS }]);

  const before = new Map<string, { redis: Record<string, unknown>; pg: Record<string, unknown> }>();
  for (const s of all) {
    const redis = await redisTrip(h, s.id);
    const pg = await postgresTrip(db, s.id);
    const view = redis['view'] as Record<string, unknown>;
    const trip = pg['trip'] as Record<string, string>;
    // Postgres agrees with Redis, trip by trip: nothing merged across shoppers.
    expect([trip['shopper_id'], Number(trip['picked_cents']), Number(trip['authorized_cents'])]).toEqual([
      s.id,
      view['picked_cents'],
      view['authorized_cents'],
    ]);
    expect(Number(pg['holds'])).toBe(view['authorized_cents']);
    const auths = pg['auths'] as { authorization_id: string }[];
    expect(auths.map((a) => a.authorization_id).sort()).toEqual([...(redis['auths'] as string[])].sort());
    before.set(s.id, { redis, pg });
  }

  await loseEverything();
  expect((await h.getTrip((all[0] as Shopper).id, TRIP)).status).toBe(404);
  const r = await ensureHydrated(h.config, logger);
  expect(r.hydratedPartitions).toBeGreaterThan(0);
  await rebuilt();

  for (const s of all) {
    const was = before.get(s.id);
    expect({ shopper: s.id, ...(await redisTrip(h, s.id)) }).toEqual({ shopper: s.id, ...was?.redis });
    expect({ shopper: s.id, ...(await postgresTrip(db, s.id)) }).toEqual({ shopper: s.id, ...was?.pg });
    // The next swipe is decided on this shopper's own ceiling: exactly what is left is approved.
    const view = was?.redis['view'] as Record<string, number>;
    const left = view['allowance_cents'] as number;
    const exact = await h.swipe(swipeAt(s, (left / 100).toFixed(2)));
    expect([s.id, exact.status, exact.json['remaining_cents']]).toEqual([s.id, 200, 0]);
    const replay = await h.swipe(s.approved);
    expect([replay.status, replay.headers.get('idempotent-replayed')]).toEqual([200, 'true']);
  }
}

describe('one trip id under 20 shoppers', () => {
  let db: TestDb;
  const stops: (() => Promise<void>)[] = [];
  beforeAll(async () => {
    db = await createTestDb();
  });
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    await db?.drop();
  });

  it('standalone Redis: every shopper keeps their own trip through persist, key loss and hydrate', async () => {
    const h = await startTestApi({
      PARTITIONS: String(PARTITIONS),
      DATABASE_URL: db.url,
      DECISION_TIMEOUT_MS: '800',
      FAILOPEN_ENABLED: 'false',
    });
    stops.push(() => h.stop());
    const shared = plainClient();
    stops.push(async () => shared.disconnect());
    let keysBefore: Snapshot = new Map();
    await scenario(
      h,
      db,
      async () => {
        keysBefore = await snapshot(h);
        await cleanPrefix(shared, h.config.redisPrefix);
      },
      // Every key of every trip rebuilt as it was (layout, values, TTLs), not just the views.
      async () => expectSameState(keysBefore, await snapshot(h)),
    );
  });

  it('Redis Cluster: the same', async () => {
    const cluster: PrivateCluster = await startRedisCluster([17021, 17022, 17023]);
    stops.push(() => cluster.stop());
    const clusterDb = await createTestDb();
    stops.push(() => clusterDb.drop());
    const h = await startTestApi({
      REDIS_CLUSTER_NODES: cluster.nodes.join(','),
      PARTITIONS: String(PARTITIONS),
      DATABASE_URL: clusterDb.url,
      DECISION_TIMEOUT_MS: '800',
      FAILOPEN_ENABLED: 'false',
    });
    stops.push(() => h.stop());
    await scenario(h, clusterDb, async () => {
      for (const node of cluster.nodes) {
        const [host, port] = node.split(':');
        const c = new Redis({ host, port: Number(port), lazyConnect: true });
        await c.connect();
        await c.flushall();
        c.disconnect();
      }
    });
  });
});

describe('keys the previous release wrote (trip:<trip_id>)', () => {
  it('serve their own shopper only, and a new trip never writes into one', async () => {
    const h = await startTestApi({ PARTITIONS: '2', FAILOPEN_ENABLED: 'false' });
    try {
      // Shopper `owner`'s legacy trip `legacyT` (as the previous release stored it), and a shopper whose id is
      // `legacyT` in the same partition, creating trip `items`: its key would be the legacy items hash.
      const owner = ['lowner0', 'lowner1', 'lowner2', 'lowner3'].find(
        (s) => h.keys.partition(s) === h.keys.partition('legacyT'),
      ) as string;
      const p = h.keys.partition(owner);
      const legacy = `${h.keys.base(p)}trip:legacyT`;
      const created = await h.putTrip('probe', 'probe-trip', safewayTrip());
      expect(created.status).toBe(201);
      const probeKey = h.keys.trip(h.keys.partition('probe'), 'probe', 'probe-trip');
      const fields = await h.redis.hgetall(probeKey);
      await h.redis.hset(legacy, { ...fields, shopper: owner });
      await h.redis.hset(`${legacy}:items`, await h.redis.hgetall(`${probeKey}:items`));
      await h.redis.hset(`${h.keys.base(p)}shopper:${owner}`, 'trip', 'legacyT');

      const view = await h.getTrip(owner, 'legacyT');
      expect([view.status, view.json['shopper_id'], view.json['estimated_cents']]).toEqual([
        200,
        owner,
        3939,
      ]);
      expect((await h.putTrip(owner, 'legacyT', safewayTrip())).status).toBe(200);
      expect((await h.getTrip('someone-else', 'legacyT')).status).toBe(404);

      const itemsBefore = await h.redis.hgetall(`${legacy}:items`);
      const aliased = await h.putTrip('legacyT', 'items', safewayTrip());
      expect([aliased.status, aliased.json['error']]).toEqual([409, 'trip_conflict']);
      expect(await h.redis.hgetall(`${legacy}:items`)).toEqual(itemsBefore);
    } finally {
      await h.stop();
    }
  });
});
