// POST /v1/authorizations/clearings (CONTRACT §2), hold expiry and late
// answers against a real api, Redis, persister and Postgres; every posting
// they make balances.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAIL_CLOSED, createAuthorizeHandler } from '../../src/decisions/authorize.js';
import { createLateFlagger } from '../../src/decisions/late.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { initTracing } from '../../src/observability/tracing.js';
import { ScriptRunner } from '../../src/redis/scripts.js';
import { signatureHeader } from '../../src/auth/signature.js';
import { SECRET, swipeBody, tripWithMilk } from '../helpers/api.js';
import { testLogger } from '../persister/helpers/log.js';
import { balance, checkLedger, clearingOf, type LedgerEnv, startLedgerEnv } from './helpers.js';

let env: LedgerEnv;

beforeAll(async () => {
  env = await startLedgerEnv();
});
afterAll(async () => {
  await env?.stop();
});

const shoppingTrip = () => tripWithMilk(env.t);

/** POST /v1/authorizations/clearings for `swipe`: `amount` cleared for `shopper`. */
const clear = (swipe: { transaction_id: string }, shopper: string, amount: string) =>
  env.t.clear({ transaction_id: swipe.transaction_id, shopper_id: shopper, amount });

async function tripAuthorized(shopper: string, trip: string): Promise<number> {
  return Number((await env.t.getTrip(shopper, trip)).json['authorized_cents']);
}

describe('clearings', () => {
  it('clears below the hold, replays identically, refuses a different amount', async () => {
    const { shopper, trip } = await shoppingTrip();
    const swipe = swipeBody(shopper, '30.00');
    expect((await env.t.swipe(swipe)).status).toBe(200);
    const body = clearingOf(swipe, shopper, '29.50');
    const first = await env.t.clear(body);
    expect(first.status).toBe(200);
    expect(first.json).toMatchObject({
      cleared_cents: 2950,
      released_cents: 3000,
      held_cents: 0,
      status: 'cleared',
    });
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    const again = await env.t.clear(body);
    expect(again.status).toBe(200);
    expect(again.text).toBe(first.text);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    const other = await env.t.clear({ ...body, amount: '29.00' });
    expect(other.status).toBe(409);
    expect(other.json['error']).toBe('clearing_conflict');
    expect(await tripAuthorized(shopper, trip)).toBe(2950);
    // Nothing is held after clearing: a reversal has nothing to release.
    const rev = await env.t.reverse({ transaction_id: swipe.transaction_id, shopper_id: shopper });
    expect(rev.status).toBe(409);
  });

  it('clears above the hold within the trip slack, refuses beyond it', async () => {
    const { shopper, trip } = await shoppingTrip();
    const swipe = swipeBody(shopper, '30.00');
    expect((await env.t.swipe(swipe)).status).toBe(200);
    const over = await clear(swipe, shopper, '32.01');
    expect(over.status).toBe(409);
    expect(over.json['error']).toBe('amount_exceeds_allowance');
    const ok = await clear(swipe, shopper, '32.00');
    expect(ok.status).toBe(200);
    expect(await tripAuthorized(shopper, trip)).toBe(3200);
  });

  it('after a partial reversal, the allowance is what is still held plus slack', async () => {
    const { shopper } = await shoppingTrip();
    const swipe = swipeBody(shopper, '30.00');
    expect((await env.t.swipe(swipe)).status).toBe(200);
    expect(
      (await env.t.reverse({ transaction_id: swipe.transaction_id, shopper_id: shopper, amount: '10.00' }))
        .status,
    ).toBe(200);
    expect((await clear(swipe, shopper, '22.01')).status).toBe(409);
    const ok = await clear(swipe, shopper, '22.00');
    expect(ok.json).toMatchObject({ released_cents: 2000, reversed_cents: 1000, cleared_cents: 2200 });
  });

  it('answers 404, 409, 400 and 401 like the reversal endpoint', async () => {
    const { shopper } = await shoppingTrip();
    expect(
      (await env.t.clear({ transaction_id: 'txn_unknown', shopper_id: shopper, amount: '1.00' })).status,
    ).toBe(404);
    const declined = swipeBody(shopper, '500.00');
    expect((await env.t.swipe(declined)).status).toBe(402);
    const d = await clear(declined, shopper, '1.00');
    expect([d.status, d.json['error']]).toEqual([409, 'authorization_not_approved']);
    const swipe = swipeBody(shopper, '10.00');
    expect((await env.t.swipe(swipe)).status).toBe(200);
    const otherShopper = await env.t.clear({
      transaction_id: swipe.transaction_id,
      shopper_id: 'someone-else',
      amount: '1.00',
    });
    expect(otherShopper.status).toBe(404);
    const cur = await env.t.clear({
      transaction_id: swipe.transaction_id,
      shopper_id: shopper,
      amount: '1.00',
      currency: 'EUR',
    });
    expect([cur.status, cur.json['error']]).toEqual([409, 'currency_mismatch']);
    for (const bad of [
      { transaction_id: swipe.transaction_id, shopper_id: shopper, amount: '1.001' },
      { transaction_id: swipe.transaction_id, shopper_id: shopper },
      { shopper_id: shopper, amount: '1.00' },
      { transaction_id: swipe.transaction_id, shopper_id: shopper, amount: '1.00', cleared_at: 'yesterday' },
    ]) {
      expect((await env.t.clear(bad)).status).toBe(400);
    }
    const raw = JSON.stringify({ transaction_id: swipe.transaction_id, shopper_id: shopper, amount: '1.00' });
    const unsigned = await env.t.request('POST', '/v1/authorizations/clearings', raw, {
      'Content-Type': 'application/json',
    });
    expect(unsigned.status).toBe(401);
  });
});

describe('hold expiry', () => {
  it('releases approved, never cleared holds once, in Redis and in the ledger', async () => {
    const { shopper, trip } = await shoppingTrip();
    const a = swipeBody(shopper, '10.00');
    const b = swipeBody(shopper, '5.00');
    const c = swipeBody(shopper, '7.00');
    for (const s of [a, b, c]) expect((await env.t.swipe(s)).status).toBe(200);
    expect(
      (await env.t.reverse({ transaction_id: a.transaction_id, shopper_id: shopper, amount: '4.00' })).status,
    ).toBe(200);
    expect((await clear(b, shopper, '5.00')).status).toBe(200);
    await env.persisted();
    const later = Date.now() + (env.t.config.holdExpiryS + 60) * 1000;
    const sweeper = env.sweeper(() => later);
    let released = 0;
    for (let i = 0; i < 20; i++) {
      const r = await sweeper.tick();
      released += r.released;
      if (r.examined === 0) break;
      await env.persisted();
    }
    // a: 600 still held, c: 700; b was cleared. Other tests' holds expire too: count only ours.
    await env.persisted();
    const rows = await env.db.query<{
      authorization_id: string;
      expired_cents: string;
      transaction_id: string;
    }>(
      'select authorization_id, expired_cents, transaction_id from authorizations where shopper_id = ? order by decided_ms',
      [shopper],
    );
    expect(rows.map((r) => Number(r.expired_cents))).toEqual([600, 0, 700]);
    expect(released).toBeGreaterThanOrEqual(2);
    expect(await tripAuthorized(shopper, trip)).toBe(500);
    expect(await balance(env.db, `card_holds:${shopper}`)).toBe(0);
    // Again: nothing more.
    const again = await env.sweeper(() => later).tick();
    expect(again.released).toBe(0);
    // A clearing after expiry still posts the settlement (nothing left to release).
    const late = await clear(c, shopper, '7.00');
    expect(late.json).toMatchObject({ released_cents: 0, cleared_cents: 700 });
    expect(await tripAuthorized(shopper, trip)).toBe(1200);
    await env.persisted();
    expect(await balance(env.db, `card_holds:${shopper}`)).toBe(0);
    expect(await balance(env.db, 'merchant_settlement_payable')).toBeGreaterThanOrEqual(1200);
    const check = await checkLedger(env.db);
    expect(check.unbalancedPostings).toEqual([]);
    for (const total of Object.values(check.totals)) expect(total).toBe(0);
  });
});

describe('late answers', () => {
  it('flags an approval answered after the processor deadline (Redis, WAL, Postgres)', async () => {
    const { shopper } = await shoppingTrip();
    const logger = testLogger();
    const scripts = new ScriptRunner(env.control, undefined, undefined);
    const flagger = createLateFlagger({
      keys: env.t.keys,
      scripts,
      logger,
      deadlineMs: env.t.config.processorDeadlineMs,
    });
    const handler = createAuthorizeHandler({
      config: env.t.config,
      keys: env.t.keys,
      scripts,
      metrics: createMetrics({ defaultMetrics: false }),
      logger,
      tracing: initTracing({}),
      fallback: FAIL_CLOSED,
      onLate: flagger.flag,
    });
    const raw = JSON.stringify(swipeBody(shopper, '3.00'));
    const headers = {
      contentType: 'application/json',
      contentLength: String(raw.length),
      signature: signatureHeader(SECRET, Math.floor(Date.now() / 1000), raw),
      idempotencyKey: '',
      authorization: '',
      traceparent: '',
      tracestate: '',
      requestId: randomBytes(4).toString('hex'),
    };
    // The request line arrived 1.5 s ago: the answer is past the 1 s deadline.
    const res = await handler({
      params: [],
      headers,
      body: Buffer.from(raw),
      startedNs: process.hrtime.bigint() - 1_500_000_000n,
    });
    expect(res.status).toBe(200);
    await flagger.settled();
    const id = JSON.parse(res.body).authorization_id as string;
    const p = env.t.keys.partition(shopper);
    expect(Number(await env.t.redis.hget(env.t.keys.auth(p, id), 'late_elapsed_ms'))).toBeGreaterThanOrEqual(
      1500,
    );
    // On time: not flagged.
    const raw2 = JSON.stringify(swipeBody(shopper, '2.00'));
    const res2 = await handler({
      params: [],
      headers: { ...headers, signature: signatureHeader(SECRET, Math.floor(Date.now() / 1000), raw2) },
      body: Buffer.from(raw2),
      startedNs: process.hrtime.bigint(),
    });
    await flagger.settled();
    const id2 = JSON.parse(res2.body).authorization_id as string;
    expect(await env.t.redis.hget(env.t.keys.auth(p, id2), 'late_ms')).toBeNull();
    await env.persisted();
    const rows = await env.db.query<{ authorization_id: string; late: boolean }>(
      'select authorization_id, late_ms is not null as late from authorizations where authorization_id in (?, ?) order by decided_ms',
      [id, id2],
    );
    expect(rows).toEqual([
      { authorization_id: id, late: true },
      { authorization_id: id2, late: false },
    ]);
  });
});
