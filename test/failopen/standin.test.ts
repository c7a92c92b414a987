import { afterAll, beforeAll, expect, test } from 'vitest';
import { newId, startTestApi, swipeBody, type TestApi, tripWithMilk } from '../helpers/api.js';
import { type HeldRedis, type HoldProxy, startHeldRedis } from './holdProxy.js';

const REDIS_PORT = 17530;
const PROXY_PORT = 17531;
let held: HeldRedis;
let proxy: HoldProxy;
let h: TestApi;

beforeAll(async () => {
  held = await startHeldRedis(REDIS_PORT, PROXY_PORT, 'standin');
  ({ proxy } = held);
  h = await startTestApi({ ...held.env, FAILOPEN_MAX_CENTS: '10000', FAILOPEN_SHOPPER_MAX_CENTS: '20000' });
}, 30_000);

afterAll(async () => {
  held?.proxy.release();
  await h?.stop();
  await held?.stop();
});

const milkTrip = () => tripWithMilk(h, 'si');

const wrongMerchant = { merchant: { name: 'Whole Foods', address: '9 Other Rd' } };

test('fail-open uses what the pod saw Redis decide', async () => {
  // Learned with Redis healthy.
  const nobody = newId('nobody');
  expect((await h.swipe(swipeBody(nobody, '5.00'))).json['reason']).toBe('UNKNOWN_SHOPPER');
  const mismatch = await milkTrip();
  expect((await h.swipe(swipeBody(mismatch.shopper, '5.00', wrongMerchant))).json['reason']).toBe(
    'MERCHANT_MISMATCH',
  );
  const closed = await milkTrip();
  expect((await h.closeTrip(closed.shopper, closed.trip)).status).toBe(200);
  const spender = await milkTrip(); // ceiling 4013
  const spent = await h.swipe(swipeBody(spender.shopper, '30.00'));
  expect(spent.json).toMatchObject({ decision: 'approved', remaining_cents: 1013 });
  const unseen = await milkTrip();

  proxy.hold(); // Redis is out of reach for decisions from here on
  try {
    const declined = async (body: ReturnType<typeof swipeBody>) => {
      const r = await h.swipe(body);
      expect(r.status, r.text).toBe(402);
      expect(r.json['reason']).toBe('STORAGE_UNAVAILABLE');
    };
    const approved = async (body: ReturnType<typeof swipeBody>) => {
      const r = await h.swipe(body);
      expect(r.status, r.text).toBe(200);
      expect(r.json['mode']).toBe('fail_open');
    };
    await declined(swipeBody(nobody, '5.00')); // seen without a trip
    await declined(swipeBody(closed.shopper, '5.00')); // trip seen closed
    await declined(swipeBody(mismatch.shopper, '5.00', wrongMerchant)); // merchant seen not to match
    await approved(swipeBody(mismatch.shopper, '5.00')); // the trip's own store: fine
    await declined(swipeBody(spender.shopper, '15.00')); // above the last-known 10.13 left
    await approved(swipeBody(spender.shopper, '10.00'));
    await declined(swipeBody(spender.shopper, '1.00')); // 10.00 + 1.00 > 10.13
    // An open trip whose allowance this pod does not know (a pick moved it): the blind caps.
    await approved(swipeBody(unseen.shopper, '5.00'));
  } finally {
    proxy.release();
  }
}, 30_000);

test('fail-open keeps the velocity limit: at most MAX_SWIPES_PER_MINUTE approvals per shopper a minute', async () => {
  const { shopper } = await milkTrip();
  proxy.hold();
  try {
    const answers = [];
    for (let i = 0; i < 11; i++) answers.push(await h.swipe(swipeBody(shopper, '1.00')));
    expect(answers.slice(0, 10).map((r) => r.json['mode'])).toEqual(Array(10).fill('fail_open'));
    expect(answers.slice(0, 10).map((r) => r.status)).toEqual(Array(10).fill(200));
    expect(answers[10]?.status).toBe(402);
    expect(answers[10]?.json['reason']).toBe('STORAGE_UNAVAILABLE');
  } finally {
    proxy.release();
  }
}, 30_000);
