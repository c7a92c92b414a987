// After Redis loses data, hydrate restores what clearings and hold expiries did:
// a cleared authorization holds nothing (a reversal is refused), the clearing
// replays identically, and an expired hold is never released twice.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { hydrateCommand } from '../../src/persister/commands.js';
import { newId, safewayTrip, swipeBody } from '../helpers/api.js';
import { testLogger } from '../persister/helpers/log.js';
import { cleanPrefix } from '../persister/helpers/redis.js';
import { clearingOf, type LedgerEnv, startLedgerEnv } from './helpers.js';

let env: LedgerEnv;
beforeAll(async () => {
  env = await startLedgerEnv();
});
afterAll(async () => {
  await env?.stop();
});

async function flushNamespace(): Promise<void> {
  await cleanPrefix(env.t.redis, env.t.config.redisPrefix);
}

it('a cleared authorization stays cleared after a flush and hydrate', async () => {
  const shopper = newId('s');
  const trip = newId('trip');
  await env.t.putTrip(shopper, trip, safewayTrip());
  await env.t.pick(shopper, trip, 'milk', { status: 'picked', quantity: 10 });
  const swipe = swipeBody(shopper, '30.00');
  expect((await env.t.swipe(swipe)).status).toBe(200);
  const body = clearingOf(swipe, shopper, '29.50');
  const first = await env.t.clear(body);
  expect(first.status).toBe(200);
  const tripBefore = (await env.t.getTrip(shopper, trip)).json;
  await env.persisted();

  await env.pausePersister();
  await flushNamespace();
  await hydrateCommand(env.t.config, testLogger());
  await env.resumePersister();

  const replay = await env.t.clear(body);
  expect(replay.status).toBe(200);
  expect(replay.text).toBe(first.text);
  const reversal = await env.t.reverse({
    transaction_id: swipe.transaction_id,
    shopper_id: shopper,
    amount: '1.00',
  });
  expect(reversal.status).toBe(409);
  const tripAfter = (await env.t.getTrip(shopper, trip)).json;
  expect(tripAfter['authorized_cents']).toBe(tripBefore['authorized_cents']);
});
