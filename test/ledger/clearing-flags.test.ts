// A clearing above what the authorization held (plus slack), on a reversed
// authorization or on a declined one is refused (409, as before) but never
// lost (issue 19): the script records it once per transaction and amount as
// clearing.flagged, and the persister keeps it in clearing_flags for review,
// with no ledger posting. Real api, Redis, persister and Postgres.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { newId, safewayTrip, swipeBody } from '../helpers/api.js';
import { checkLedger, type LedgerEnv, startLedgerEnv } from './helpers.js';

let env: LedgerEnv;
beforeAll(async () => {
  env = await startLedgerEnv();
});
afterAll(async () => {
  await env?.stop();
});

async function shopper(): Promise<string> {
  const s = newId('cf');
  const trip = newId('trip');
  expect((await env.t.putTrip(s, trip, safewayTrip())).status).toBe(201);
  expect((await env.t.pick(s, trip, 'milk', { status: 'picked', quantity: 10 })).status).toBe(200);
  return s;
}

async function flags(transactionId: string) {
  return env.db.query(
    `select flag, cleared_cents::int as cleared, excess_cents::int as excess, amount_cents::int as amount,
            reversed_cents::int as reversed from clearing_flags where transaction_id = ?`,
    [transactionId],
  );
}

it('above the authorization plus slack: 409 with a message, recorded once, flagged above_authorized', async () => {
  const s = await shopper();
  const swipe = swipeBody(s, '30.00'); // slack 200: 32.00 clears, 32.01 does not
  expect((await env.t.swipe(swipe)).status).toBe(200);
  const over = { transaction_id: swipe.transaction_id, shopper_id: s, amount: '45.00' };
  const r = await env.t.clear(over);
  expect(r.status).toBe(409);
  expect(r.json['error']).toBe('amount_exceeds_allowance');
  expect(r.json['message']).toMatch(/recorded and flagged/);
  expect((await env.t.clear(over)).status).toBe(409); // the processor retries: still one record
  await env.persisted();
  expect(await flags(swipe.transaction_id)).toEqual([
    { flag: 'above_authorized', cleared: 4500, excess: 1300, amount: 3000, reversed: 0 },
  ]);
  expect((await checkLedger(env.db)).unbalancedPostings).toEqual([]);
});

it('on a fully reversed authorization: flagged reversed_authorization', async () => {
  const s = await shopper();
  const swipe = swipeBody(s, '30.00');
  expect((await env.t.swipe(swipe)).status).toBe(200);
  expect((await env.t.reverse({ transaction_id: swipe.transaction_id, shopper_id: s })).status).toBe(200);
  const r = await env.t.clear({ transaction_id: swipe.transaction_id, shopper_id: s, amount: '30.00' });
  expect(r.status).toBe(409);
  await env.persisted();
  expect(await flags(swipe.transaction_id)).toMatchObject([
    { flag: 'reversed_authorization', cleared: 3000, amount: 3000, reversed: 3000 },
  ]);
});

it('on a declined authorization: flagged not_approved', async () => {
  const s = await shopper();
  const swipe = swipeBody(s, '90.00'); // above the allowance: declined
  expect((await env.t.swipe(swipe)).json['reason']).toBe('AMOUNT_EXCEEDS_ALLOWANCE');
  const r = await env.t.clear({ transaction_id: swipe.transaction_id, shopper_id: s, amount: '90.00' });
  expect(r.status).toBe(409);
  expect(r.json['error']).toBe('authorization_not_approved');
  await env.persisted();
  expect(await flags(swipe.transaction_id)).toMatchObject([{ flag: 'not_approved', cleared: 9000 }]);
});
