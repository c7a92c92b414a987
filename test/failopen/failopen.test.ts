// Fail-open end to end, in process, against a PRIVATE redis-server that is
// really frozen (SIGSTOP) or really gone: the policy, identical retries, the
// journal, the replay into Redis and the WAL, /readyz, FAILOPEN_ENABLED=false.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { newId, startTestApi, swipeBody, type TestApi, tripWithMilk } from '../helpers/api.js';
import { type PrivateRedis, startPrivateRedis } from './privateRedis.js';

const dir = mkdtempSync(join(tmpdir(), 'sa-failopen-'));
let redis: PrivateRedis;

beforeAll(async () => {
  redis = await startPrivateRedis(16510);
});
afterAll(async () => {
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function until(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** What `hydrate` does at deploy time: every partition marked intact (the replayer waits for it). */
async function markIntact(h: TestApi): Promise<void> {
  for (let p = 0; p < h.config.partitions; p++)
    await h.redis.hset(`${h.keys.base(p)}meta`, 'initialized_ms', Date.now());
}

const shopperWithTrip = (h: TestApi) => tripWithMilk(h);

/**
 * Swipes until the breaker has opened: the first few wait for the deadline and
 * stay queued in the frozen Redis, which executes them after SIGCONT (their
 * fail-open approvals then replay as already_decided).
 */
async function tripBreaker(h: TestApi, sacrificial: { shopper: string }): Promise<void> {
  for (let i = 0; i < 5; i++) await h.swipe(swipeBody(sacrificial.shopper, '0.01'));
}

describe('with fail-open enabled', () => {
  let h: TestApi;
  beforeAll(async () => {
    h = await startTestApi({
      REDIS_URL: redis.url,
      FAILOPEN_JOURNAL_PATH: join(dir, 'a.jsonl'),
      FAILOPEN_MAX_CENTS: '5000',
      FAILOPEN_SHOPPER_MAX_CENTS: '8000',
    });
    await markIntact(h);
  });
  afterAll(async () => {
    redis.thaw();
    await h?.stop();
  });

  test('a frozen Redis: capped approvals, identical retries, replay exactly once into the WAL', async () => {
    const a = await shopperWithTrip(h);
    // Stand-in knowledge (issue 19): fail-open approves at most the allowance
    // this pod last saw Redis report for the trip. Give a's trip room for the
    // two 40.00 approvals below (picked 100.00: ceiling 114.72).
    expect(
      (
        await h.pick(a.shopper, a.trip, 'milk', {
          status: 'picked',
          quantity: 20,
          unit_price: '5.00',
          customer_approved: true,
        })
      ).status,
    ).toBe(200);
    const b = await shopperWithTrip(h);
    const sacrificial = await shopperWithTrip(h);
    const normal = await h.swipe(swipeBody(a.shopper, '1.00'));
    expect(normal.json['mode']).toBe('normal');

    redis.freeze();
    try {
      await tripBreaker(h, sacrificial);
      const ready = await h.request('GET', '/readyz');
      expect(ready.status).toBe(200);
      expect(ready.json['circuit']).not.toBe('closed');

      const first = swipeBody(a.shopper, '40.00');
      const r1 = await h.swipe(first);
      expect(r1.status).toBe(200);
      expect(r1.json).toMatchObject({
        decision: 'approved',
        mode: 'fail_open',
        amount_cents: 4000,
        trip_id: '',
      });
      // A retry during the outage: the identical answer, nothing consumed.
      const again = await h.swipe(first);
      expect(again.text).toBe(r1.text);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      // Same key, other amount: conflict, like Redis would say.
      const conflict = await h.swipe({ ...first, amount: '41.00' });
      expect(conflict.json['reason']).toBe('IDEMPOTENCY_CONFLICT');
      // Per-swipe cap.
      const big = await h.swipe(swipeBody(a.shopper, '50.01'));
      expect(big.status).toBe(402);
      expect(big.json['reason']).toBe('STORAGE_UNAVAILABLE');
      // Per-shopper cap: 40 + 40 = 80 ok, then 0.01 more is refused.
      const second = await h.swipe(swipeBody(a.shopper, '40.00'));
      expect(second.json['mode']).toBe('fail_open');
      const over = await h.swipe(swipeBody(a.shopper, '0.01'));
      expect(over.json['reason']).toBe('STORAGE_UNAVAILABLE');
      // Another shopper has its own cap.
      const other = await h.swipe(swipeBody(b.shopper, '12.34'));
      expect(other.json['mode']).toBe('fail_open');
      expect((await h.api.metrics.failopenJournalPending.get()).values[0]?.value).toBe(5 + 3);

      redis.thaw();
      await until(
        'journal drained',
        async () => (await h.api.metrics.failopenJournalPending.get()).values[0]?.value === 0,
      );

      // Exactly once in the WAL, counted against the trips.
      const wal = (await h.walEvents()).filter((e) => e.t === 'failopen.replayed');
      const ours = wal.filter((e) => e.d['shopper_id'] === a.shopper || e.d['shopper_id'] === b.shopper);
      expect(ours.map((e) => e.d['authorization_id']).sort()).toEqual(
        [r1.json['authorization_id'], second.json['authorization_id'], other.json['authorization_id']].sort(),
      );
      for (const e of ours)
        expect(e.d).toMatchObject({ replay_outcome: 'applied', mode: 'fail_open', status: 200 });
      const tripA = await h.getTrip(a.shopper, a.trip);
      expect(tripA.json['authorized_cents']).toBe(100 + 4000 + 4000);

      // A retry against the healthy Redis: still the identical fail-open answer.
      const later = await h.swipe(first);
      expect(later.text).toBe(r1.text);
      expect(later.headers.get('idempotent-replayed')).toBe('true');
      expect((await h.request('GET', '/readyz')).json).toMatchObject({
        circuit: 'closed',
        failopen_journal_pending: 0,
      });
    } finally {
      redis.thaw();
    }
  });
});

describe('with FAILOPEN_ENABLED=false', () => {
  let h: TestApi;
  beforeAll(async () => {
    h = await startTestApi({
      REDIS_URL: redis.url,
      FAILOPEN_JOURNAL_PATH: join(dir, 'b.jsonl'),
      FAILOPEN_ENABLED: 'false',
    });
  });
  afterAll(async () => {
    redis.thaw();
    await h?.stop();
  });

  test('every swipe fails closed and /readyz says not ready', async () => {
    const a = await shopperWithTrip(h);
    redis.freeze();
    try {
      await tripBreaker(h, a);
      const r = await h.swipe(swipeBody(a.shopper, '1.00'));
      expect(r.status).toBe(402);
      expect(r.json['reason']).toBe('STORAGE_UNAVAILABLE');
      expect((await h.request('GET', '/readyz')).status).toBe(503);
    } finally {
      redis.thaw();
    }
    await until('breaker closed', async () => (await h.request('GET', '/readyz')).status === 200);
    expect((await h.swipe(swipeBody(a.shopper, '1.00'))).json['mode']).toBe('normal');
  });
});

describe('journal across a restart', () => {
  test('approvals journaled before stop() are replayed by the next process', async () => {
    const path = join(dir, 'c.jsonl');
    const env = {
      REDIS_URL: redis.url,
      FAILOPEN_JOURNAL_PATH: path,
      REDIS_PREFIX: newId('tjr').replace('_', ''),
    };
    const h1 = await startTestApi(env);
    await markIntact(h1);
    const a = await shopperWithTrip(h1);
    const sacrificial = await shopperWithTrip(h1);
    redis.freeze();
    let approved: string;
    try {
      await tripBreaker(h1, sacrificial);
      const r = await h1.swipe(swipeBody(a.shopper, '25.00'));
      expect(r.json['mode']).toBe('fail_open');
      approved = r.json['authorization_id'] as string;
      await h1.api.stop(); // SIGTERM path: drain, flush; Redis still frozen: nothing replayed
    } finally {
      redis.thaw();
    }
    const h2 = await startTestApi(env);
    try {
      await until(
        'journal drained',
        async () => (await h2.api.metrics.failopenJournalPending.get()).values[0]?.value === 0,
      );
      const replayed = (await h2.walEvents()).filter((e) => e.t === 'failopen.replayed');
      expect(
        replayed.filter((e) => e.d['shopper_id'] === a.shopper).map((e) => e.d['authorization_id']),
      ).toEqual([approved]);
      expect((await h2.getTrip(a.shopper, a.trip)).json['authorized_cents']).toBe(2500);
    } finally {
      await h2.stop();
      h1.redis.disconnect();
    }
  });
});
