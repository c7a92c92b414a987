// A trip id a shopper reuses after Redis dropped the first trip's keys is a
// second version of (shopper_id, trip_id). Postgres records one trip per
// identity, so the persister must never merge the second version's body,
// picks or decisions into the recorded trip: they are dead letters, with their
// reason. The same body created again is the same trip: its events apply.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/observability/metrics.js';
import { type RunningPersister, startPersister } from '../../src/persister/commands.js';
import { safewayTrip, startTestApi, swipeBody, type TestApi } from '../helpers/api.js';
import { testLogger } from './helpers/log.js';
import { createTestDb, type TestDb } from './helpers/pg.js';

let db: TestDb;
let h: TestApi;

beforeAll(async () => {
  db = await createTestDb();
  h = await startTestApi({ PARTITIONS: '4', DATABASE_URL: db.url, FAILOPEN_ENABLED: 'false' });
});
afterAll(async () => {
  await h?.stop();
  await db?.drop();
});

/** Runs a persister (one delivery before a dead letter) until every WAL entry is written or dead. */
async function persist(): Promise<void> {
  const config = { ...h.config, persisterDeliveriesMax: 1, persisterBlockMs: 50, persisterClaimIdleMs: 200 };
  const p: RunningPersister = await startPersister(
    config,
    testLogger(),
    createMetrics({ defaultMetrics: false }),
  );
  try {
    const deadline = Date.now() + 20_000;
    for (;;) {
      let left = 0;
      for (let i = 0; i < h.config.partitions; i++) left += await h.redis.xlen(h.keys.wal(i));
      if (left === 0) return;
      if (Date.now() > deadline) throw new Error(`WAL not drained: ${left} left`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await p.stop();
  }
}

/** What Redis's TTL does to a trip long after its last activity: its keys are gone, the shopper stays. */
async function dropTripKeys(shopper: string, trip: string): Promise<void> {
  const key = h.keys.trip(h.keys.partition(shopper), shopper, trip);
  await h.redis.del(key, `${key}:items`, `${key}:picks`, `${key}:swipes`, `${key}:auths`);
}

async function recorded(shopper: string, trip: string) {
  const [t] = await db.query<Record<string, string>>(
    `select picked_cents, approved_cents, authorized_cents, estimated_cents, tax_rate_bps, created_ms
       from trips where shopper_id = ? and trip_id = ?`,
    [shopper, trip],
  );
  const items = await db.query(
    'select item_id, pick_line_cents from items where shopper_id = ? and trip_id = ? order by item_id',
    [shopper, trip],
  );
  return { trip: t, items };
}

async function deadLetters(shopper: string): Promise<{ type: string; error: string }[]> {
  return db.query(`select type, error from dead_letters where payload like ? order by id`, [
    `%"${shopper}"%`,
  ]);
}

const secondBody = safewayTrip({
  tax_rate_bps: 0,
  orders: [{ order_id: 'o-1', items: [{ item_id: 'milk', quantity: 30, unit_price: '9.99' }] }],
});

describe('a trip id reused after its keys expired', () => {
  it('with another body: the second version is dead-lettered, the recorded trip untouched', async () => {
    const s = 'vshopper1';
    expect((await h.putTrip(s, 'r1', safewayTrip())).status).toBe(201);
    expect((await h.pick(s, 'r1', 'milk', { status: 'picked', quantity: 3 })).status).toBe(200);
    expect((await h.swipe(swipeBody(s, '5.00'))).status).toBe(200);
    await persist();
    const before = await recorded(s, 'r1');

    await dropTripKeys(s, 'r1');
    expect((await h.putTrip(s, 'r1', secondBody)).status).toBe(201);
    expect((await h.pick(s, 'r1', 'milk', { status: 'picked', quantity: 30 })).status).toBe(200);
    expect((await h.swipe(swipeBody(s, '90.00'))).status).toBe(200);
    await persist();

    expect(await recorded(s, 'r1')).toEqual(before);
    const dead = await deadLetters(s);
    expect(dead.map((d) => d.type).sort()).toEqual([
      'authorization.decided',
      'item.updated',
      'trip.upserted',
    ]);
    expect(dead.find((d) => d.type === 'trip.upserted')?.error).toMatch(/conflicts with the recorded trip/);
    expect(dead.find((d) => d.type === 'item.updated')?.error).toMatch(/another version of the trip/);
    expect(dead.find((d) => d.type === 'authorization.decided')?.error).toMatch(/another version/);
  });

  it('with another body, both versions in one batch: the first is recorded, the second dead-lettered', async () => {
    const s = 'vshopper2';
    expect((await h.putTrip(s, 'r2', safewayTrip())).status).toBe(201);
    expect((await h.pick(s, 'r2', 'milk', { status: 'picked', quantity: 3 })).status).toBe(200);
    await dropTripKeys(s, 'r2');
    expect((await h.putTrip(s, 'r2', secondBody)).status).toBe(201);
    expect((await h.pick(s, 'r2', 'milk', { status: 'picked', quantity: 30 })).status).toBe(200);
    await persist();

    const r = await recorded(s, 'r2');
    expect([r.trip?.['estimated_cents'], r.trip?.['picked_cents']].map(Number)).toEqual([3939, 1047]);
    expect((await deadLetters(s)).map((d) => d.type).sort()).toEqual(['item.updated', 'trip.upserted']);
  });

  it('with the same body: it is the same trip, its new events apply', async () => {
    const s = 'vshopper3';
    expect((await h.putTrip(s, 'r3', safewayTrip())).status).toBe(201);
    expect((await h.pick(s, 'r3', 'milk', { status: 'picked', quantity: 3 })).status).toBe(200);
    await persist();
    await dropTripKeys(s, 'r3');
    await new Promise((r) => setTimeout(r, 5)); // a later created_ms
    expect((await h.putTrip(s, 'r3', safewayTrip())).status).toBe(201);
    expect((await h.pick(s, 'r3', 'milk', { status: 'picked', quantity: 5 })).status).toBe(200);
    expect((await h.swipe(swipeBody(s, '5.00'))).status).toBe(200);
    await persist();

    expect(await deadLetters(s)).toEqual([]);
    const r = await recorded(s, 'r3');
    const redisTrip = await h.redis.hgetall(h.keys.trip(h.keys.partition(s), s, 'r3'));
    expect([r.trip?.['picked_cents'], r.trip?.['authorized_cents'], r.trip?.['created_ms']]).toEqual([
      redisTrip['picked_cents'],
      redisTrip['authorized_cents'],
      redisTrip['created_ms'],
    ]);
  });
});
