import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId, type Reply, startTestApi, swipeBody, type TestApi, tripWithMilk } from '../helpers/api.js';
import { type HeldRedis, type HoldProxy, startHeldRedis } from './holdProxy.js';

const REDIS_PORT = 17510;
const PROXY_PORT = 17511;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let held: HeldRedis;
let proxy: HoldProxy;
let h: TestApi;

beforeAll(async () => {
  held = await startHeldRedis(REDIS_PORT, PROXY_PORT, 'orderings');
  ({ proxy } = held);
  h = await startTestApi({ ...held.env, DECISION_TIMEOUT_MS: '25' });
}, 30_000);

afterAll(async () => {
  held?.proxy.release();
  await h?.stop();
  await held?.stop();
});

/** A trip with milk picked (34.90): ceiling 4013 cents. */
const shopperWithTrip = () => tripWithMilk(h, 'ord');

async function authorized(shopper: string, trip: string): Promise<number> {
  const r = await h.getTrip(shopper, trip);
  return r.json['authorized_cents'] as number;
}

async function authHash(shopper: string, id: string): Promise<Record<string, string>> {
  return h.redis.hgetall(h.keys.auth(h.keys.partition(shopper), id));
}

async function replayEvent(id: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ev = (await h.walEvents()).find(
      (e) => e.e.length > 0 && e.t === 'failopen.replayed' && e.d['authorization_id'] === id,
    );
    if (ev !== undefined) return ev;
    if (Date.now() > deadline) throw new Error(`no failopen.replayed for ${id}`);
    await sleep(50);
  }
}

function expectSameAnswer(retry: Reply, first: Reply): void {
  expect(retry.status, retry.text).toBe(first.status);
  expect(retry.text).toBe(first.text);
}

describe('the answer given is the record, in every ordering', () => {
  it('Redis decides before the deadline: retries get that decision', async () => {
    const { shopper } = await shopperWithTrip();
    const body = swipeBody(shopper, '10.00');
    const first = await h.swipe(body);
    expect(first.status, first.text).toBe(200);
    expect(first.json['mode']).toBe('normal');
    const retry = await h.swipe(body);
    expectSameAnswer(retry, first);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
  });

  it('deadline, retry while held, late Redis decisions (decline and approve), replay, retry', async () => {
    const x = await shopperWithTrip(); // 50.00 > 40.13 ceiling: Redis will decline
    const y = await shopperWithTrip(); // 5.00: Redis will approve
    const z = newId('nobody'); // no trip: Redis will decline UNKNOWN_SHOPPER
    const bodies = {
      x: swipeBody(x.shopper, '50.00'),
      y: swipeBody(y.shopper, '5.00'),
      z: swipeBody(z, '5.00'),
    };
    proxy.hold();
    // Three deadlines open the breaker, so the replay waits for Redis to be
    // probed healthy again: the late decisions execute first.
    const first = {
      x: await h.swipe(bodies.x),
      y: await h.swipe(bodies.y),
      z: await h.swipe(bodies.z),
    };
    for (const r of Object.values(first)) {
      expect(r.status, r.text).toBe(200);
      expect(r.json['mode']).toBe('fail_open');
    }
    // A retry while the original call is still held: the same answer.
    expectSameAnswer(await h.swipe(bodies.x), first.x);

    proxy.release(); // the timed-out calls now execute, late
    const ids = {
      x: first.x.json['authorization_id'] as string,
      y: first.y.json['authorization_id'] as string,
    };
    // A retry racing the late decisions and the replay still gets the first answer.
    expectSameAnswer(await h.swipe(bodies.x), first.x);
    expectSameAnswer(await h.swipe(bodies.z), first.z);

    const ev = {
      x: await replayEvent(ids.x),
      y: await replayEvent(ids.y),
      z: await replayEvent(first.z.json['authorization_id'] as string),
    };
    expect(ev.x.d).toMatchObject({
      replay_outcome: 'overridden',
      decision: 'approved',
      mode: 'fail_open',
      redis_decision: 'declined',
      redis_reason: 'AMOUNT_EXCEEDS_ALLOWANCE',
      trip_id: x.trip,
      authorized_cents: 5000,
    });
    expect(ev.y.d).toMatchObject({ replay_outcome: 'already_decided', redis_decision: 'approved' });
    expect(ev.z.d).toMatchObject({
      replay_outcome: 'overridden',
      redis_decision: 'declined',
      redis_reason: 'UNKNOWN_SHOPPER',
    });

    // After the replay: every retry, served by Redis now, is the first answer.
    for (const k of ['x', 'y', 'z'] as const) expectSameAnswer(await h.swipe(bodies[k]), first[k]);
    // Counted once each; the late decline turned into the approval given.
    expect(await authorized(x.shopper, x.trip)).toBe(5000);
    expect(await authorized(y.shopper, y.trip)).toBe(500);
    expect(await authHash(x.shopper, ids.x)).toMatchObject({
      decision: 'approved',
      mode: 'fail_open',
      code: '0',
      fo_trip: x.trip,
      fo_redis_code: '10',
    });
  }, 30_000);

  it('deadline, journal replay, then the late Redis decision: it finds the approval and changes nothing', async () => {
    const { shopper, trip } = await shopperWithTrip();
    const body = swipeBody(shopper, '50.00'); // Redis alone would decline it
    proxy.hold();
    const first = await h.swipe(body);
    expect(first.status, first.text).toBe(200);
    expect(first.json['mode']).toBe('fail_open');
    const id = first.json['authorization_id'] as string;
    // One deadline does not open the breaker: the replayer (another
    // connection) replays while the original call is still held.
    const ev = await replayEvent(id);
    expect(ev.d).toMatchObject({ replay_outcome: 'applied', authorized_cents: 5000 });
    expect(ev.d['redis_reason']).toBe('AMOUNT_EXCEEDS_ALLOWANCE'); // flagged: Redis would have declined
    expectSameAnswer(await h.swipe(body), first);
    const walBefore = (await h.walEvents()).length;

    proxy.release(); // the original call executes now, after the replay
    await sleep(200);
    // It found the idempotency key the replay wrote: nothing decided, nothing written.
    expect((await h.walEvents()).length).toBe(walBefore);
    expect(await authHash(shopper, id)).toMatchObject({ decision: 'approved', mode: 'fail_open' });
    expect(await authorized(shopper, trip)).toBe(5000);
    expectSameAnswer(await h.swipe(body), first);
  }, 30_000);

  it('a retry sent while the original waits on the deadline gets the same fail-open answer', async () => {
    const { shopper, trip } = await shopperWithTrip();
    const body = swipeBody(shopper, '45.00');
    proxy.hold();
    const [a, b] = await Promise.all([h.swipe(body), sleep(5).then(() => h.swipe(body))]);
    expect(a.status, a.text).toBe(200);
    expect(b.text).toBe(a.text);
    proxy.release();
    const ev = await replayEvent(a.json['authorization_id'] as string);
    expect(['overridden', 'applied']).toContain(ev.d['replay_outcome']);
    expectSameAnswer(await h.swipe(body), a);
    expect(await authorized(shopper, trip)).toBe(4500);
  }, 30_000);
});
