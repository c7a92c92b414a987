// authorizeSwipe reads the trip and checks its owner in one HMGET (read_trip_of in
// lua/includes/trip.lua): the new key when it is this shopper's trip, else the legacy
// trip:<trip_id> key a previous release wrote, else no trip.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type TestApi, startTestApi, swipeBody, tripWithMilk } from '../helpers/api.js';

let h: TestApi;

beforeAll(async () => {
  h = await startTestApi();
});

afterAll(async () => {
  await h.stop();
});

function base(shopper: string): string {
  return h.keys.base(h.keys.partition(shopper));
}

it('a trip under its legacy key (previous release) is decided and counted there', async () => {
  const { shopper, trip } = await tripWithMilk(h);
  const key = h.keys.trip(h.keys.partition(shopper), shopper, trip);
  const legacy = `${base(shopper)}trip:${trip}`;
  for (const s of ['', ':items', ':picks']) await h.redis.rename(key + s, legacy + s);
  const r = await h.swipe(swipeBody(shopper, '12.34'));
  expect(r.status, r.text).toBe(200);
  expect(await h.redis.hget(legacy, 'authorized_cents')).toBe('1234');
  expect(await h.redis.hget(legacy, 'approved_cents')).toBe('1234');
  expect(await h.redis.exists(key)).toBe(0);
});

it('a legacy key that names another shopper is not this shopper’s trip', async () => {
  const { shopper, trip } = await tripWithMilk(h);
  const other = await tripWithMilk(h);
  const key = h.keys.trip(h.keys.partition(shopper), shopper, trip);
  await h.redis.del(key);
  // The other shopper's trip hash, copied under this trip id's legacy name (same partition only
  // matters for the key's slot on a Cluster; this harness is standalone).
  const fields = await h.redis.hgetall(
    h.keys.trip(h.keys.partition(other.shopper), other.shopper, other.trip),
  );
  await h.redis.hset(`${base(shopper)}trip:${trip}`, fields);
  const r = await h.swipe(swipeBody(shopper, '1.00'));
  expect(r.status, r.text).toBe(402);
  expect(r.json.reason).toBe('NO_ACTIVE_TRIP');
});

it('a key of another type under the new trip key name reads as no trip, not as an error', async () => {
  const { shopper, trip } = await tripWithMilk(h);
  const key = h.keys.trip(h.keys.partition(shopper), shopper, trip);
  await h.redis.del(key);
  await h.redis.zadd(key, 1, 'x'); // a legacy trip's :swipes set can have this name
  const r = await h.swipe(swipeBody(shopper, '1.00'));
  expect(r.status, r.text).toBe(402);
  expect(r.json.reason).toBe('NO_ACTIVE_TRIP');
});
