// The velocity window (CONTRACT §1 VELOCITY_LIMIT) in the trip hash's `vel` field
// (VELOCITY_IN_TRIP_HASH, lua/includes/velocity.lua) or in the trip's :swipes sorted set (flag
// off): pods of either setting serve the same trips during a rollout, so each counts what both
// hold, and a swipe is never let through because another pod recorded the earlier ones.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AUTHORIZE_ARG,
  authorizeSwipeCall,
  VELOCITY_IN_HASH,
  VELOCITY_IN_HASH_SWIPES_MAX,
  velocityInHash,
} from '../../src/redis/commands.js';
import { SCRIPTS } from '../../src/redis/scripts.generated.js';
import { type TestApi, startTestApi, swipeBody, tripWithMilk, uniquePrefix } from '../helpers/api.js';

let inHash: TestApi;
let inSet: TestApi;

beforeAll(async () => {
  const prefix = uniquePrefix('vel');
  const env = { MAX_SWIPES_PER_MINUTE: '3', REDIS_PREFIX: prefix };
  [inHash, inSet] = await Promise.all([
    startTestApi({ ...env, VELOCITY_IN_TRIP_HASH: 'true' }),
    startTestApi({
      ...env,
      VELOCITY_IN_TRIP_HASH: 'false',
      FAILOPEN_JOURNAL_PATH: `.journal/${prefix}-off.jsonl`,
    }),
  ]);
});

afterAll(async () => {
  await Promise.all([inHash?.stop(), inSet?.stop()]);
});

function tripKey(shopper: string, trip: string): string {
  return inHash.keys.trip(inHash.keys.partition(shopper), shopper, trip);
}

async function swipe(h: TestApi, shopper: string): Promise<{ status: number; reason: unknown }> {
  const r = await h.swipe(swipeBody(shopper, '1.00'));
  return { status: r.status, reason: r.json['reason'] };
}

/** The absolute times the `vel` field holds (first in ms, then differences). */
function velTimes(text: string | null): number[] {
  let at = 0;
  return (text ?? '')
    .split(',')
    .filter((p) => p !== '')
    .map((p) => (at += Number(p)));
}

describe('velocity in the trip hash', () => {
  it('declines the swipe after max_swipes in the window, with no :swipes key written', async () => {
    const { shopper, trip } = await tripWithMilk(inHash);
    const before = Date.now();
    for (let i = 0; i < 3; i++)
      expect(await swipe(inHash, shopper)).toEqual({ status: 200, reason: undefined });
    expect(await swipe(inHash, shopper)).toEqual({ status: 402, reason: 'VELOCITY_LIMIT' });
    const key = tripKey(shopper, trip);
    expect(await inHash.redis.exists(`${key}:swipes`)).toBe(0);
    // The declined fourth swipe is in the window too; the field keeps the newest three.
    const times = velTimes(await inHash.redis.hget(key, 'vel'));
    expect(times).toHaveLength(3);
    for (const t of times) expect(t).toBeGreaterThanOrEqual(before);
  });

  it('counts declined swipes (CONTRACT: declined ones included)', async () => {
    const { shopper } = await tripWithMilk(inHash);
    for (let i = 0; i < 3; i++) {
      const r = await inHash.swipe(swipeBody(shopper, '1.00', { currency: 'EUR' }));
      expect(r.json['reason']).toBe('CURRENCY_MISMATCH');
    }
    expect(await swipe(inHash, shopper)).toEqual({ status: 402, reason: 'VELOCITY_LIMIT' });
  });

  it('counts only the swipes of the last 60 s', async () => {
    const { shopper, trip } = await tripWithMilk(inHash);
    const now = Date.now();
    // Two swipes long gone and one 5 s ago: two more fit, the third is over the limit.
    await inHash.redis.hset(tripKey(shopper, trip), 'vel', `${now - 300_000},${239_000},${56_000}`);
    expect((await swipe(inHash, shopper)).status).toBe(200);
    expect((await swipe(inHash, shopper)).status).toBe(200);
    // The gone ones were dropped when the field was written again.
    const times = velTimes(await inHash.redis.hget(tripKey(shopper, trip), 'vel'));
    expect(times).toHaveLength(3);
    expect(times[0]).toBe(now - 5_000);
    expect(await swipe(inHash, shopper)).toEqual({ status: 402, reason: 'VELOCITY_LIMIT' });
  });
});

describe('a mixed fleet: flag on and flag off on the same trips', () => {
  for (const order of [
    ['set', 'hash', 'set', 'hash'],
    ['hash', 'set', 'hash', 'set'],
  ] as const) {
    it(`swipes recorded ${order.slice(0, 3).join(', ')}: the fourth (${order[3]}) is over the limit`, async () => {
      const { shopper, trip } = await tripWithMilk(inHash);
      const pod = (p: 'set' | 'hash') => (p === 'set' ? inSet : inHash);
      for (const p of order.slice(0, 3)) expect((await swipe(pod(p), shopper)).status).toBe(200);
      expect(await swipe(pod(order[3]), shopper)).toEqual({ status: 402, reason: 'VELOCITY_LIMIT' });
      const key = tripKey(shopper, trip);
      const inSetCount = order.slice(0, 3).filter((p) => p === 'set').length;
      expect(await inHash.redis.zcard(`${key}:swipes`)).toBe(inSetCount + (order[3] === 'set' ? 1 : 0));
    });
  }

  it('the flag on counts a :swipes set written by fail-open replay or hydrate (they write the set)', async () => {
    const { shopper, trip } = await tripWithMilk(inHash);
    const now = Date.now();
    const swipes = `${tripKey(shopper, trip)}:swipes`;
    await inHash.redis.zadd(swipes, now - 61_000, 'auth_gone', now - 2_000, 'auth_a', now - 1_000, 'auth_b');
    expect((await swipe(inHash, shopper)).status).toBe(200);
    expect(await swipe(inHash, shopper)).toEqual({ status: 402, reason: 'VELOCITY_LIMIT' });
  });
});

describe('the field stays bounded', () => {
  it('a limit above VELOCITY_IN_HASH_SWIPES_MAX keeps the :swipes set; the script refuses `vel` for it', async () => {
    const cfg = { velocityInTripHash: true, maxSwipesPerMinute: VELOCITY_IN_HASH_SWIPES_MAX };
    expect(velocityInHash(cfg)).toBe(true);
    expect(velocityInHash({ ...cfg, maxSwipesPerMinute: VELOCITY_IN_HASH_SWIPES_MAX + 1 })).toBe(false);
    expect(velocityInHash({ ...cfg, velocityInTripHash: false })).toBe(false);
    const call = authorizeSwipeCall(
      {
        config: { ...inHash.config, maxSwipesPerMinute: VELOCITY_IN_HASH_SWIPES_MAX + 1 },
        keys: inHash.keys,
      },
      {
        transactionId: 'txn-bound',
        shopperId: 's-bound',
        amountCents: 100,
        currency: 'USD',
        merchantName: 'x',
        merchantAddress: 'y',
        merchantNameNorm: 'x',
        merchantAddressNorm: 'y',
        lat: '',
        lng: '',
        idempotencyKey: 't:txn-bound',
        fingerprint: 'f',
      },
      { nowMs: Date.now(), authorizationId: 'auth_bound', signature: '', eventId: 'ev-bound' },
    );
    expect(call.args[AUTHORIZE_ARG.velocityLayout]).toBe('');
    const forced = [...call.args];
    forced[AUTHORIZE_ARG.velocityLayout] = VELOCITY_IN_HASH;
    await expect(inHash.redis.eval(SCRIPTS.authorizeSwipe.lua, 4, ...call.keys, ...forced)).rejects.toThrow(
      /at most 64 swipes/,
    );
  });
});
