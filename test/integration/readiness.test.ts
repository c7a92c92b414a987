// Readiness (issue 19): a pod is ready only when it can decide at full speed.
// On a private redis-server (17540): startApi returns with every script
// loaded and /readyz says warm; after the scripts vanish (SCRIPT FLUSH: what a
// failover to a fresh master looks like to the pod) the periodic re-check
// loads them again; the first swipes then never pay a NOSCRIPT round trip.
import { afterAll, beforeAll, expect, test } from 'vitest';
import { SCRIPTS } from '../../src/redis/scripts.generated.js';
import { EvalshaFrames } from '../../src/redis/frame.js';
import { type PrivateRedis, startPrivateRedis } from '../failopen/privateRedis.js';
import { newId, safewayTrip, startTestApi, swipeBody, type TestApi } from '../helpers/api.js';

const shas = Object.values(SCRIPTS).map((s) => new EvalshaFrames(s.lua, s.numberOfKeys).sha);
let redis: PrivateRedis;
let h: TestApi;

beforeAll(async () => {
  redis = await startPrivateRedis(17540);
  h = await startTestApi({ REDIS_URL: redis.url, READY_RECHECK_MS: '200' });
}, 30_000);
afterAll(async () => {
  await h?.stop();
  await redis?.stop();
});

async function loaded(): Promise<number[]> {
  return (await redis.client().call('SCRIPT', 'EXISTS', ...shas)) as number[];
}

test('ready means scripts loaded on the master and connections warm, again after they are lost', async () => {
  expect(await loaded()).toEqual(shas.map(() => 1));
  const ready = await h.request('GET', '/readyz');
  expect(ready.status).toBe(200);
  expect(ready.json).toMatchObject({ status: 'ready', warm: true, circuit: 'closed' });

  await redis.client().call('SCRIPT', 'FLUSH');
  expect(await loaded()).toEqual(shas.map(() => 0));
  const deadline = Date.now() + 5000;
  while ((await loaded()).includes(0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  expect(await loaded()).toEqual(shas.map(() => 1));

  const shopper = newId('ready');
  const trip = newId('trip');
  expect((await h.putTrip(shopper, trip, safewayTrip())).status).toBe(201);
  expect((await h.pick(shopper, trip, 'milk', { status: 'picked', quantity: 10 })).status).toBe(200);
  const r = await h.swipe(swipeBody(shopper, '5.00'));
  expect(r.json).toMatchObject({ decision: 'approved', mode: 'normal' });
});
