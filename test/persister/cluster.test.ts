// The persister and hydrate check on a private 3-master Redis Cluster: every
// partition's stream lives in its own slot, so reads, acks, trims and the
// lag gauge must never combine partitions in one command or pipeline.
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startPersister } from '../../src/persister/commands.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { newId, safewayTrip, startTestApi, swipeBody, type TestApi } from '../helpers/api.js';
import { type PrivateCluster, startRedisCluster } from '../helpers/redisCluster.js';
import { testLogger } from './helpers/log.js';
import { createTestDb, type TestDb } from './helpers/pg.js';
import { waitFor } from '../helpers/waitFor.js';

let cluster: PrivateCluster;
let db: TestDb;
let h: TestApi;

beforeAll(async () => {
  cluster = await startRedisCluster([17011, 17012, 17013]);
  db = await createTestDb();
  h = await startTestApi({
    REDIS_CLUSTER_NODES: cluster.nodes.join(','),
    PARTITIONS: '16',
    DATABASE_URL: db.url,
    DECISION_TIMEOUT_MS: '500',
  });
});
afterAll(async () => {
  await h?.stop();
  await db?.drop();
  await cluster?.stop();
});

test('events from every partition reach Postgres exactly once; totals match Redis', async () => {
  const persister = await startPersister(h.config, testLogger(), createMetrics({ defaultMetrics: false }));
  try {
    const trips: Array<{ shopper: string; trip: string }> = [];
    let events = 0;
    for (let i = 0; i < 12; i++) {
      const shopper = newId('s');
      const trip = newId('trip');
      trips.push({ shopper, trip });
      expect((await h.putTrip(shopper, trip, safewayTrip())).status).toBe(201);
      expect((await h.pick(shopper, trip, 'milk', { status: 'picked', quantity: 10 })).status).toBe(200);
      const ok = swipeBody(shopper, '10.00');
      expect((await h.swipe(ok)).status).toBe(200);
      expect((await h.swipe(swipeBody(shopper, '900.00'))).status).toBe(402);
      expect(
        (await h.reverse({ transaction_id: ok.transaction_id, shopper_id: shopper, amount: '1.00' })).status,
      ).toBe(200);
      events += 5;
    }
    expect(new Set(trips.map((t) => h.keys.partition(t.shopper))).size).toBeGreaterThan(4);
    await waitFor('every event in Postgres', async () => {
      const [row] = await db.query<{ n: string }>('select count(*) as n from applied_events');
      return Number(row?.n) === events;
    });
    for (const { shopper, trip } of trips) {
      const [row] = await db.query<Record<string, string>>(
        'select * from trips where shopper_id = ? and trip_id = ?',
        [shopper, trip],
      );
      const redisTrip = await h.redis.hgetall(h.keys.trip(h.keys.partition(shopper), shopper, trip));
      expect([row?.picked_cents, row?.authorized_cents].map(Number)).toEqual(
        [redisTrip['picked_cents'], redisTrip['authorized_cents']].map(Number),
      );
      expect(Number(row?.authorized_cents)).toBe(900);
    }
    const [dead] = await db.query<{ n: string }>('select count(*) as n from dead_letters');
    expect(Number(dead?.n)).toBe(0);
  } finally {
    await persister.stop();
  }
});
