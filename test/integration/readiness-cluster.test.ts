// Readiness on a private 3-master Redis Cluster (17550-17552): a fresh api is
// warm when startApi returns (scripts on every master, connections open), so
// nine concurrent swipes on one trip right after boot are all decided by
// Redis, never fail-open (issue 19: a cold pod once failed two of nine open on
// a healthy cluster); a master that loses its scripts (as a promoted replica
// or a resharded node has none) gets them back from the periodic re-check.
import { afterAll, beforeAll, expect, test } from 'vitest';
import { EvalshaFrames } from '../../src/redis/frame.js';
import { SCRIPTS } from '../../src/redis/scripts.generated.js';
import { type PrivateCluster, startRedisCluster } from '../helpers/redisCluster.js';
import { newId, safewayTrip, startTestApi, swipeBody, type TestApi } from '../helpers/api.js';
import { Redis } from 'ioredis';

const PORTS = [17550, 17551, 17552];
const shas = Object.values(SCRIPTS).map((s) => new EvalshaFrames(s.lua, s.numberOfKeys).sha);
let cluster: PrivateCluster;
const masters: Redis[] = [];

beforeAll(async () => {
  cluster = await startRedisCluster(PORTS);
  for (const p of PORTS) masters.push(new Redis({ port: p, host: '127.0.0.1', maxRetriesPerRequest: 1 }));
}, 60_000);
afterAll(async () => {
  for (const m of masters) m.disconnect();
  await cluster?.stop();
});

async function loadedOn(m: Redis): Promise<number[]> {
  return (await m.call('SCRIPT', 'EXISTS', ...shas)) as number[];
}

test('a fresh api decides its first concurrent swipes with Redis, three boots in a row', async () => {
  for (let boot = 0; boot < 3; boot++) {
    for (const m of masters) await m.call('SCRIPT', 'FLUSH');
    const h: TestApi = await startTestApi({
      REDIS_CLUSTER_NODES: cluster.nodes.join(','),
      READY_RECHECK_MS: '200',
    });
    try {
      for (const m of masters) expect(await loadedOn(m)).toEqual(shas.map(() => 1));
      const ready = await h.request('GET', '/readyz');
      expect(ready.json).toMatchObject({ status: 'ready', warm: true });
      const shopper = newId('cold');
      const trip = newId('trip');
      expect((await h.putTrip(shopper, trip, safewayTrip())).status).toBe(201);
      expect((await h.pick(shopper, trip, 'milk', { status: 'picked', quantity: 10 })).status).toBe(200);
      const answers = await Promise.all(Array.from({ length: 9 }, () => h.swipe(swipeBody(shopper, '4.00'))));
      for (const a of answers) expect(a.json['mode'], a.text).toBe('normal');
      // 9 x 4.00 = 36.00 <= 40.13: all approved by Redis, counted once each.
      expect((await h.getTrip(shopper, trip)).json['authorized_cents']).toBe(3600);

      // A master without the scripts (failover, resharding) gets them back.
      const victim = masters[boot % masters.length] as Redis;
      await victim.call('SCRIPT', 'FLUSH');
      const deadline = Date.now() + 5000;
      while ((await loadedOn(victim)).includes(0) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      expect(await loadedOn(victim)).toEqual(shas.map(() => 1));
    } finally {
      await h.stop();
    }
  }
}, 90_000);
