import { afterAll, beforeAll, expect, it } from 'vitest';
import { type HeldRedis, type HoldProxy, startHeldRedis } from '../failopen/holdProxy.js';
import { newId, safewayTrip, swipeBody } from '../helpers/api.js';
import { balance, checkLedger, type LedgerEnv, startLedgerEnv } from './helpers.js';

let held: HeldRedis;
let proxy: HoldProxy;
let env: LedgerEnv;

beforeAll(async () => {
  held = await startHeldRedis(17560, 17561, 'overridden');
  ({ proxy } = held);
  env = await startLedgerEnv({ ...held.env });
}, 60_000);
afterAll(async () => {
  held?.proxy.release();
  await env?.stop();
  await held?.stop();
});

it('a late Redis decline of a fail-open approval: approved in Postgres, flagged, posted to the ledger', async () => {
  const shopper = newId('ov');
  const trip = newId('trip');
  expect((await env.t.putTrip(shopper, trip, safewayTrip())).status).toBe(201);
  expect((await env.t.pick(shopper, trip, 'milk', { status: 'picked', quantity: 10 })).status).toBe(200);
  const body = swipeBody(shopper, '50.00'); // above the 40.13 ceiling: Redis alone declines it
  proxy.hold();
  // Three deadlines open the breaker: the replay waits until the late calls executed.
  const first = await env.t.swipe(body);
  for (let i = 0; i < 2; i++) await env.t.swipe(swipeBody(newId('nobody'), '1.00'));
  expect(first.status, first.text).toBe(200);
  expect(first.json['mode']).toBe('fail_open');
  const id = first.json['authorization_id'] as string;
  proxy.release();

  const deadline = Date.now() + 15_000;
  for (;;) {
    const rows = await env.db.query<{ outcome: string }>(
      'select outcome from failopen_replays where authorization_id = ?',
      [id],
    );
    if (rows.length > 0) break;
    if (Date.now() > deadline) throw new Error('replay never reached Postgres');
    await new Promise((r) => setTimeout(r, 100));
  }
  await env.persisted();

  expect(
    await env.db.query(
      `select outcome, redis_decision, redis_reason, trip_id from failopen_replays where authorization_id = ?`,
      [id],
    ),
  ).toEqual([
    {
      outcome: 'overridden',
      redis_decision: 'declined',
      redis_reason: 'AMOUNT_EXCEEDS_ALLOWANCE',
      trip_id: trip,
    },
  ]);
  expect(
    await env.db.query(
      `select decision, reason, mode, http_status, trip_id, amount_cents::int as amount
         from authorizations where authorization_id = ?`,
      [id],
    ),
  ).toEqual([
    { decision: 'approved', reason: null, mode: 'fail_open', http_status: 200, trip_id: trip, amount: 5000 },
  ]);
  // Counted against the trip in Postgres too.
  expect(
    await env.db.query(
      `select approved_cents::int as approved, authorized_cents::int as authorized from trips
        where shopper_id = ? and trip_id = ?`,
      [shopper, trip],
    ),
  ).toEqual([{ approved: 5000, authorized: 5000 }]);
  expect(await balance(env.db, `card_holds:${shopper}`)).toBe(5000);
  expect((await checkLedger(env.db)).unbalancedPostings).toEqual([]);
  // And the processor's retry, now answered by Redis: the first answer.
  const retry = await env.t.swipe(body);
  expect(retry.status).toBe(200);
  expect(retry.text).toBe(first.text);
}, 60_000);
