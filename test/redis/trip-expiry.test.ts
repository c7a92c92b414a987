// Trip keys expire together at a whole hour (lua/includes/trip.lua, keep_trip_alive): a swipe
// re-sets them only when that hour moved, so every key it creates next to the trip must get the
// same expiry, and a key an older release expired in exact seconds is moved to the hour again.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestApi, startTestApi, swipeBody, tripWithMilk } from '../helpers/api.js';

const HOUR_MS = 3_600_000;
const SUFFIXES = ['', ':items', ':picks', ':swipes', ':auths'];

let h: TestApi;

beforeAll(async () => {
  // The :swipes sorted set is the velocity window only with the flag off (test/redis/velocity-layout.test.ts).
  h = await startTestApi({ MAX_SWIPES_PER_MINUTE: '3', VELOCITY_IN_TRIP_HASH: 'false' });
});

afterAll(async () => {
  await h.stop();
});

function tripKeys(shopper: string, trip: string): string[] {
  const base = h.keys.trip(h.keys.partition(shopper), shopper, trip);
  return SUFFIXES.map((s) => base + s);
}

async function expiries(keys: string[]): Promise<number[]> {
  return Promise.all(keys.map(async (k) => Number(await h.redis.call('PEXPIRETIME', k))));
}

async function approve(shopper: string): Promise<void> {
  const r = await h.swipe(swipeBody(shopper, '1.00'));
  expect(r.status, r.text).toBe(200);
}

describe('trip key expiry', () => {
  it('a swipe leaves every key of its trip expiring at one whole hour, at least the keys TTL away', async () => {
    const { shopper, trip } = await tripWithMilk(h);
    const before = Date.now();
    await approve(shopper);
    const after = Date.now();
    const at = await expiries(tripKeys(shopper, trip));
    const ttlMs = (h.config.tripTtlS + h.config.authorizationTtlS) * 1000;
    expect(new Set(at).size, `${at}`).toBe(1);
    expect(at[0]! % HOUR_MS).toBe(0);
    expect(at[0]!).toBeGreaterThanOrEqual(before + ttlMs);
    expect(at[0]!).toBeLessThan(after + ttlMs + HOUR_MS);
  });

  it('keys an older release expired in exact seconds, or that a swipe creates anew, get the trip hour', async () => {
    const { shopper, trip } = await tripWithMilk(h);
    await approve(shopper);
    const keys = tripKeys(shopper, trip);
    const [hour] = await expiries(keys);
    // The previous release's EXPIRE: exact seconds from now, below the hour step.
    for (const k of keys) await h.redis.expire(k, h.config.tripTtlS + h.config.authorizationTtlS);
    expect((await expiries(keys)).every((x) => x < hour!)).toBe(true);
    await approve(shopper);
    expect(await expiries(keys)).toEqual(SUFFIXES.map(() => hour));
    // The velocity window emptied (ZREMRANGEBYSCORE deletes the set) and the list is gone: the
    // next swipe creates both while the trip's hour stands, and they must not live forever.
    await h.redis.del(keys[3]!, keys[4]!);
    await approve(shopper);
    expect(await expiries(keys)).toEqual(SUFFIXES.map(() => hour));
  });

  it('velocity still counts every swipe in the window when the set is trimmed only over the limit', async () => {
    const { shopper, trip } = await tripWithMilk(h);
    for (let i = 0; i < 3; i++) await approve(shopper);
    const fourth = await h.swipe(swipeBody(shopper, '1.00'));
    expect(fourth.status).toBe(402);
    expect(fourth.json.reason).toBe('VELOCITY_LIMIT');
    expect(await h.redis.zcard(tripKeys(shopper, trip)[3]!)).toBe(3);
    expect(await h.redis.llen(tripKeys(shopper, trip)[4]!)).toBe(4);
  });
});
