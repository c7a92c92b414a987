// Hydrate: Redis loses data (all keys of the namespace deleted; and,
// separately, a private redis-server restarted without persistence), hydrate
// rebuilds it from Postgres, and
//   1. the rebuilt keys equal what Redis held before the loss (layout, values, TTLs);
//   2. the same later requests get the same answers as on a Redis that never
//      lost anything (a reference api on its own namespace, fed the same history).
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { ensureHydrated, hydrateCommand } from '../../src/persister/commands.js';
import { Persister } from '../../src/persister/consumer.js';
import { connectRedis, createRedisClient } from '../../src/redis/client.js';
import { type Reply, safewayTrip, startTestApi, swipeBody, type TestApi } from '../helpers/api.js';
import { testLogger } from './helpers/log.js';
import { createTestDb, type TestDb } from './helpers/pg.js';
import { cleanPrefix, plainClient, type PrivateRedis, privateRedis, uniquePrefix } from './helpers/redis.js';
import { expectSameState, snapshot } from './helpers/snapshot.js';

const PARTITIONS = 4;
const REDIS_PORT = 16_410;
const logger = testLogger();
const apiEnv = {
  PARTITIONS: String(PARTITIONS),
  MAX_SWIPES_PER_MINUTE: '3',
  DECISION_TIMEOUT_MS: '800',
  FAILOPEN_ENABLED: 'false',
};

let db: TestDb;
let shared: Redis;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  shared = plainClient();
});

afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  shared.disconnect();
});

/** Partition numbers are not namespaced: each scenario gets its own database. */
async function freshDb(): Promise<void> {
  db = await createTestDb();
  const mine = db;
  cleanups.push(() => mine.drop());
}

function configFor(api: TestApi) {
  return loadConfig({
    NODE_ENV: 'test',
    REDIS_URL: api.config.redisUrl,
    REDIS_PREFIX: api.config.redisPrefix,
    PARTITIONS: String(PARTITIONS),
    DATABASE_URL: db.url,
    MAX_SWIPES_PER_MINUTE: apiEnv.MAX_SWIPES_PER_MINUTE,
    PERSISTER_BLOCK_MS: '50',
    PERSISTER_LEASE_MS: '900',
    PERSISTER_CLAIM_IDLE_MS: '300',
    SIGNATURE_SECRETS: 'unused-signature-secret-0123456789',
    API_TOKENS: 'unused-api-token-0123456789abcdef',
  });
}

/** Runs a persister for this api's namespace until its WAL is drained and trimmed. */
async function persistAll(api: TestApi): Promise<void> {
  const config = configFor(api);
  const streamClient = createRedisClient(config, { name: 'h-stream', commandTimeoutMs: 10_000 });
  const controlClient = createRedisClient(config, { name: 'h-control', commandTimeoutMs: 10_000 });
  await connectRedis(streamClient);
  await connectRedis(controlClient);
  const p = new Persister({
    config,
    logger,
    metrics: createMetrics({ defaultMetrics: false }),
    orm: db.orm,
    streamClient,
    controlClient,
  });
  await p.start();
  const deadline = Date.now() + 20_000;
  try {
    for (;;) {
      let left = 0;
      for (let i = 0; i < PARTITIONS; i++) left += await api.redis.xlen(api.keys.wal(i));
      if (left === 0) break;
      if (Date.now() > deadline) throw new Error(`WAL not drained: ${left} left`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await p.stop();
    streamClient.disconnect();
    controlClient.disconnect();
  }
}

/** What must match between two apis: everything but generated ids. */
function answer(r: Reply): unknown {
  const { authorization_id: _a, authorizations, ...rest } = r.json;
  const list = Array.isArray(authorizations)
    ? authorizations.map((x: Record<string, unknown>) => {
        const { authorization_id: _i, at_ms: _t, transaction_id: _x, ...kept } = x;
        return kept;
      })
    : authorizations;
  return {
    status: r.status,
    replayed: r.headers.get('idempotent-replayed') === 'true',
    ...rest,
    authorizations: list,
  };
}

interface History {
  swipes: { body: ReturnType<typeof swipeBody>; headers?: Record<string, string> }[];
  approvedTxn: string[];
}

/** The same history on both apis. Returns the bodies for later replays. */
async function history(apis: TestApi[]): Promise<History> {
  const h: History = { swipes: [], approvedTxn: [] };
  const both = async (f: (api: TestApi) => Promise<Reply>) => {
    const out: Reply[] = [];
    for (const api of apis) out.push(await f(api));
    const [first, ...rest] = out;
    for (const r of rest) expect(answer(r)).toEqual(answer(first as Reply));
    return first as Reply;
  };
  // Trips: s0..s4 shop; s5 has nothing picked; s6's first trip is closed, then a second one.
  for (let i = 0; i <= 6; i++) {
    expect(
      (
        await both((a) =>
          a.putTrip(`hs${i}`, `ht${i}`, safewayTrip({ hold_cents: i === 2 ? 1500 : undefined })),
        )
      ).status,
    ).toBe(201);
  }
  for (let i = 0; i <= 4; i++) {
    await both((a) => a.pick(`hs${i}`, `ht${i}`, 'milk', { status: 'picked', quantity: 3 + i }));
    await both((a) => a.pick(`hs${i}`, `ht${i}`, 'apples', { status: 'not_found' }));
  }
  await both((a) =>
    a.pick('hs1', 'ht1', 'apples', {
      status: 'replaced',
      replacement: { item_id: 'fuji', quantity: '1.2', unit_price: '3.10' },
    }),
  );
  await both((a) => a.pick('hs0', 'ht0', 'milk', { status: 'picked', quantity: 2 })); // replaces the earlier pick
  await both((a) => a.pick('hs6', 'ht6', 'milk', { status: 'picked', quantity: 1 }));
  await both((a) => a.closeTrip('hs6', 'ht6'));
  expect((await both((a) => a.putTrip('hs6', 'ht6b', safewayTrip()))).status).toBe(201);
  await both((a) => a.pick('hs6', 'ht6b', 'milk', { status: 'picked', quantity: 4 }));

  const swipe = async (body: ReturnType<typeof swipeBody>, headers?: Record<string, string>) => {
    h.swipes.push({ body, headers });
    const r = await both((a) => a.swipe(body, headers === undefined ? {} : { headers }));
    if (r.status === 200) h.approvedTxn.push(body.transaction_id);
    return r;
  };
  await swipe(swipeBody('hs0', '3.00'));
  await swipe(swipeBody('hs1', '5.00'));
  await swipe(swipeBody('hs1', '500.00')); // AMOUNT_EXCEEDS_ALLOWANCE
  await swipe(swipeBody('hs2', '9.00'));
  await swipe(swipeBody('hs3', '2.00', { merchant: { name: 'Whole Foods', address: '1 Other Rd' } })); // MERCHANT_MISMATCH
  await swipe(swipeBody('hs5', '1.00')); // NO_ITEMS_PICKED
  await swipe(swipeBody('hs6', '1.00')); // the new trip
  await swipe(swipeBody('nobody', '1.00')); // UNKNOWN_SHOPPER
  const { transaction_id: _t, ...noTxn } = swipeBody('hs0', '1.25');
  await swipe(noTxn as ReturnType<typeof swipeBody>, { 'Idempotency-Key': 'hdr-key-1' });
  // Velocity: hs4 gets 3 swipes in a row (the limit), the 4th is declined.
  for (let i = 0; i < 4; i++) await swipe(swipeBody('hs4', '0.50'));
  // Reversals: a partial one, and a full one (no amount).
  const [t0, t1] = h.approvedTxn;
  await both((a) => a.reverse({ transaction_id: t0, shopper_id: 'hs0', amount: '1.00', reversal_id: 'r1' }));
  await both((a) => a.reverse({ transaction_id: t1, shopper_id: 'hs1' }));
  return h;
}

/** The same later requests on both: answers must be equal. */
async function later(ref: TestApi, sub: TestApi, h: History): Promise<number> {
  let compared = 0;
  const same = async (f: (api: TestApi) => Promise<Reply>) => {
    const a = await f(ref);
    const b = await f(sub);
    expect(answer(b)).toEqual(answer(a));
    compared++;
    return b;
  };
  // Replays of every earlier decision: same answers, nothing consumed.
  for (const s of h.swipes) {
    const r = await same((a) => a.swipe(s.body, s.headers === undefined ? {} : { headers: s.headers }));
    if (s.body.shopper_id !== 'nobody') expect(r.headers.get('idempotent-replayed')).toBe('true');
  }
  // Same key, different amount: conflict.
  const first = h.swipes[0]?.body;
  if (first !== undefined) await same((a) => a.swipe({ ...first, amount: '7.77' }));
  // New decisions against the restored state.
  for (const s of ['hs0', 'hs1', 'hs2', 'hs3', 'hs4', 'hs5', 'hs6', 'nobody']) {
    for (const amount of ['1.00', '20.00']) await same((a) => a.swipe(swipeBody(s, amount)));
  }
  await same((a) => a.swipe(swipeBody('hs6', '1.00'))); // trip limits, velocity now engaged on several
  // Reversal replays and a new reversal.
  const [t0, t1, t2] = h.approvedTxn;
  await same((a) => a.reverse({ transaction_id: t0, shopper_id: 'hs0', amount: '1.00', reversal_id: 'r1' }));
  await same((a) => a.reverse({ transaction_id: t1, shopper_id: 'hs1' }));
  await same((a) => a.reverse({ transaction_id: t2, shopper_id: 'hs2', amount: '0.10' }));
  // Trip API: identical PUT is 200, a second open trip is 409, picks move the same totals, closed stays closed.
  await same((a) => a.putTrip('hs0', 'ht0', safewayTrip()));
  await same((a) => a.putTrip('hs0', 'ht0-other', safewayTrip()));
  await same((a) => a.putTrip('hs6', 'ht6', safewayTrip()));
  await same((a) => a.pick('hs3', 'ht3', 'milk', { status: 'picked', quantity: 9 }));
  await same((a) => a.pick('hs6', 'ht6', 'milk', { status: 'picked', quantity: 9 }));
  await same((a) =>
    a.swipe(swipeBody('hs3', '4.00', { merchant: { name: 'Safeway Store 0042', address: '123 Main St.' } })),
  );
  for (let i = 0; i <= 6; i++) {
    const get = await same((a) => a.getTrip(`hs${i}`, `ht${i}`));
    expect(get.status).toBe(200);
  }
  return compared;
}

async function startPair(subEnv: Record<string, string> = {}): Promise<{ ref: TestApi; sub: TestApi }> {
  const ref = await startTestApi({ ...apiEnv, REDIS_PREFIX: uniquePrefix('thref'), DATABASE_URL: db.url });
  cleanups.push(() => ref.stop());
  const sub = await startTestApi({
    ...apiEnv,
    REDIS_PREFIX: uniquePrefix('thsub'),
    DATABASE_URL: db.url,
    ...subEnv,
  });
  cleanups.push(() => sub.stop());
  return { ref, sub };
}

describe('hydrate', () => {
  it('rebuilds a flushed namespace exactly, and later requests are answered as if nothing was lost', async () => {
    await freshDb();
    const { ref, sub } = await startPair();
    const h = await history([ref, sub]);
    await persistAll(sub);
    expect(await db.query('select * from dead_letters')).toEqual([]);
    const before = await snapshot(sub);
    expect(before.size).toBeGreaterThan(50);

    await cleanPrefix(shared, sub.config.redisPrefix); // the namespace's FLUSHALL
    expect((await snapshot(sub)).size).toBe(0);
    const config = configFor(sub);
    const r = await ensureHydrated(config, logger);
    expect(r.hydratedPartitions).toBeGreaterThan(0);
    expectSameState(before, await snapshot(sub));
    for (let p = 0; p < PARTITIONS; p++)
      expect(await shared.hexists(`${sub.keys.base(p)}meta`, 'hydrated_ms')).toBe(1);
    // Marked: a second check does nothing.
    expect((await ensureHydrated(config, logger)).hydratedPartitions).toBe(0);

    const compared = await later(ref, sub, h);
    expect(compared).toBeGreaterThan(40);
  });

  it('rebuilds a restarted Redis without persistence; the persister resumes on the new streams', async () => {
    const redis: PrivateRedis = privateRedis(REDIS_PORT);
    await redis.start();
    cleanups.push(() => redis.stop());
    await freshDb();
    const { ref, sub } = await startPair({ REDIS_URL: redis.url });
    const h = await history([ref, sub]);
    await persistAll(sub);
    const before = await snapshot(sub);
    const [{ n: persistedBefore } = { n: '0' }] = await db.query<{ n: string }>(
      'select count(*) as n from applied_events',
    );

    await redis.stop();
    await redis.start();
    // The api reconnects on its own; wait until it answers again.
    const deadline = Date.now() + 15_000;
    while ((await sub.request('GET', '/readyz')).status !== 200 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    expect((await snapshot(sub)).size).toBe(0);
    await hydrateCommand(configFor(sub), logger);
    expectSameState(before, await snapshot(sub));

    await later(ref, sub, h);
    // New events land in new streams (new consumer group): the persister picks them up.
    await persistAll(sub);
    const [{ n: persistedAfter } = { n: '0' }] = await db.query<{ n: string }>(
      'select count(*) as n from applied_events',
    );
    expect(Number(persistedAfter)).toBeGreaterThan(Number(persistedBefore));
  });

  it('marks an empty system initialized without work', async () => {
    const config = loadConfig({
      NODE_ENV: 'test',
      REDIS_PREFIX: uniquePrefix('thempty'),
      PARTITIONS: String(PARTITIONS),
      DATABASE_URL: db.url,
      SIGNATURE_SECRETS: 'unused-signature-secret-0123456789',
      API_TOKENS: 'unused-api-token-0123456789abcdef',
    });
    cleanups.push(() => cleanPrefix(shared, config.redisPrefix));
    const empty = await createTestDb();
    cleanups.push(() => empty.drop());
    const r = await ensureHydrated({ ...config, databaseUrl: empty.url }, logger);
    expect(r.hydratedPartitions).toBe(0);
    for (let p = 0; p < PARTITIONS; p++) {
      expect(await shared.hexists(`${config.redisPrefix}:{p${p}}:meta`, 'initialized_ms')).toBe(1);
    }
  });
});
