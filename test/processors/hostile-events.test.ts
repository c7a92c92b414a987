// Review of issue #20 (a buggy processor's later events): redeliveries and malformed
// amounts must not move money twice or release holds nobody asked to release.
import { randomUUID } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LedgerEnv } from '../ledger/helpers.js';
import {
  approvedStripeAuthorization,
  LITHIC_SECRET,
  ledgerBalanced,
  lithicAsaRequest,
  lithicHeaders,
  lithicTransactionUpdated,
  marqetaHeaders,
  marqetaJitRequest,
  marqetaWebhook,
  postStripe,
  STRIPE_EVENTS,
  STRIPE_SECRET,
  shopperWithCard,
  startProcessorEnv,
  stripeAuthorizationUpdated,
  stripeCapture,
  stripeEvent,
  stripeHeaders,
  uid,
} from './helpers.js';

let env: LedgerEnv;
beforeAll(async () => {
  env = await startProcessorEnv(19010);
});
afterAll(async () => {
  await env?.stop();
});

const JIT = '/v1/processors/marqeta/jit';
const HOOKS = '/v1/processors/marqeta/webhooks';
const jit = (body: Record<string, unknown>) =>
  env.t.request('POST', JIT, JSON.stringify(body), marqetaHeaders());
const hook = (body: Record<string, unknown>) =>
  env.t.request('POST', HOOKS, JSON.stringify(body), marqetaHeaders());
const signed = (path: string, body: Record<string, unknown>) => {
  const raw = JSON.stringify(body);
  return env.t.request('POST', path, raw, lithicHeaders(raw));
};
const stripe = (body: Record<string, unknown>) => postStripe(env.t, STRIPE_EVENTS, body);
const outcomes = (r: { json: Record<string, unknown> }) =>
  (r.json['events'] as Array<{ outcome: string }>).map((e) => e.outcome);

/** An authorization of 20.00 and its incremental 10.00, both under one Marqeta transaction token. */
async function incrementalPair() {
  const { shopperId, tripId, cardId } = await shopperWithCard(env, 'marqeta');
  const txn = uid('txn');
  const first = uid('jit');
  expect(
    (await jit(marqetaJitRequest({ token: txn, jitToken: first, cardId, amount: '20.00' }))).status,
  ).toBe(200);
  const inc = marqetaJitRequest({
    token: txn,
    jitToken: uid('jit'),
    cardId,
    amount: '10.00',
    method: 'pgfs.authorization.incremental',
    originalJitToken: first,
  });
  expect((await jit(inc)).status).toBe(200);
  expect((await env.t.getTrip(shopperId, tripId)).json['authorized_cents']).toBe(3000);
  return { shopperId, tripId, cardId, txn };
}

describe('processor events from a buggy processor', () => {
  it('a redelivered clearing of an incremental authorization is applied once', async () => {
    const { shopperId, tripId, cardId, txn } = await incrementalPair();
    const clearing = marqetaWebhook([
      { type: 'authorization.clearing', token: uid('cl'), preceding: txn, cardId, amount: '1.50' },
    ]);
    const r = await hook(clearing);
    expect(outcomes(r)).toEqual(['cleared']);
    expect((await env.t.getTrip(shopperId, tripId)).json['authorized_cents']).toBe(150);
    // The processor redelivers the same notification: nothing moves.
    const again = await hook(clearing);
    expect(again.status).toBe(200);
    expect((await env.t.getTrip(shopperId, tripId)).json['authorized_cents']).toBe(150);
    // A second clearing with another amount cannot be posted: a conflict (logged), nothing moves.
    const second = await hook(
      marqetaWebhook([
        { type: 'authorization.clearing', token: uid('cl'), preceding: txn, cardId, amount: '2.00' },
      ]),
    );
    expect(outcomes(second)).toEqual(['conflict']);
    expect((await env.t.getTrip(shopperId, tripId)).json['authorized_cents']).toBe(150);
    await env.persisted();
    const cleared = await env.db.query<{ n: string; total: string }>(
      `select count(*)::text as n, coalesce(sum(cleared_cents), 0)::text as total
         from authorizations where shopper_id = ? and cleared_cents is not null`,
      [shopperId],
    );
    expect(cleared).toEqual([{ n: '1', total: '150' }]);
    expect(await ledgerBalanced(env)).toBe(true);
  });

  it('a reversal whose amount cannot be read releases nothing', async () => {
    const { shopperId, tripId, cardId, txn } = await incrementalPair();
    for (const amount of ['"1.005"', '"1e3"', '"-5.00"', '"abc"', '0']) {
      const r = await hook(
        marqetaWebhook([
          { type: 'authorization.reversal', token: uid('rv'), preceding: txn, cardId, amount },
        ]),
      );
      expect(r.status).toBe(200);
      expect(outcomes(r)).toEqual(['ignored']);
    }
    expect((await env.t.getTrip(shopperId, tripId)).json['authorized_cents']).toBe(3000);
  });

  it('a Lithic reversal whose amount is not an integer of minor units releases nothing', async () => {
    const { shopperId, tripId, cardId } = await shopperWithCard(env, 'lithic');
    const token = randomUUID();
    const asa = await signed(
      '/v1/processors/lithic/asa',
      lithicAsaRequest({ token, cardId, amount: 2000, eventToken: randomUUID() }),
    );
    expect(asa.json['result']).toBe('APPROVED');
    const r = await signed(
      '/v1/processors/lithic/events',
      lithicTransactionUpdated({
        token,
        cardId,
        events: [{ token: randomUUID(), type: 'AUTHORIZATION_REVERSAL', amount: -12.5 }],
      }),
    );
    expect(r.status).toBe(200);
    expect(outcomes(r)).toEqual(['ignored']);
    expect((await env.t.getTrip(shopperId, tripId)).json['authorized_cents']).toBe(2000);
  });

  it('a Stripe authorization closed (amount 0) before its capture arrives keeps the spend', async () => {
    const { shopperId, tripId, cardId, auth } = await approvedStripeAuthorization(env, 2000);
    // Stripe closes a captured authorization; its update may arrive before the capture.
    const closed = await stripe(
      stripeAuthorizationUpdated(
        auth,
        cardId,
        { amount: 0, status: 'closed' },
        { amount: 2000, status: 'pending' },
      ),
    );
    expect(closed.status).toBe(200);
    expect(outcomes(closed)).toEqual(['ignored']);
    expect((await env.t.getTrip(shopperId, tripId)).json['authorized_cents']).toBe(2000);
    const capture = await stripe(stripeCapture(auth, cardId, 2000));
    expect(outcomes(capture)).toEqual(['cleared']);
    expect((await env.t.getTrip(shopperId, tripId)).json['authorized_cents']).toBe(2000);
    expect(await ledgerBalanced(env)).toBe(true);
  });

  it('a notification with more events than one request applies is refused whole, never cut short', async () => {
    const { shopperId, tripId, cardId, txn } = await incrementalPair();
    const reversals = (n: number) =>
      marqetaWebhook(
        Array.from({ length: n }, () => ({
          type: 'authorization.reversal',
          token: uid('rv'),
          preceding: txn,
          cardId,
          amount: '0.01',
        })),
      );
    const over = await hook(reversals(101));
    expect(over.status).toBe(400);
    expect(over.json['message']).toContain('at most 100');
    expect((await env.t.getTrip(shopperId, tripId)).json['authorized_cents']).toBe(3000);
    const within = await hook(reversals(100));
    expect(within.status).toBe(200);
    expect((await env.t.getTrip(shopperId, tripId)).json['authorized_cents']).toBe(2900);
  });
});

describe('Stripe expiry reported as reversed', () => {
  it('an authorization reversed with an amount left for late captures is an expiry: the late capture posts', async () => {
    const { shopperId, tripId, cardId, auth } = await approvedStripeAuthorization(env, 1500);
    // Stripe: expired without capture = status reversed, amount what is left for late captures.
    const expired = await stripe(
      stripeAuthorizationUpdated(auth, cardId, { amount: 1500, status: 'reversed' }, { status: 'pending' }),
    );
    expect(outcomes(expired)).toEqual(['expired']);
    expect((await env.t.getTrip(shopperId, tripId)).json['authorized_cents']).toBe(0);
    const late = await stripe(stripeCapture(auth, cardId, 1500));
    expect(outcomes(late)).toEqual(['cleared']);
    expect((await env.t.getTrip(shopperId, tripId)).json['authorized_cents']).toBe(1500);
    expect(await ledgerBalanced(env)).toBe(true);
  });
});

describe('refunds a persister must be able to book', () => {
  it('a refund without a card, with a time before 1970 or an over-long id is booked, never dead-lettered', async () => {
    const noCard = uid('rf');
    const old = uid('rf');
    const r = await hook({
      transactions: [
        { type: 'refund', state: 'COMPLETION', token: noCard, amount: 1.25, currency_code: 'USD' },
        {
          type: 'refund',
          state: 'COMPLETION',
          token: old,
          card_token: uid('mq'),
          amount: 2.5,
          currency_code: 'USD',
          created_time: '1965-01-01T00:00:00Z',
        },
      ],
    });
    expect(r.status).toBe(200);
    expect(outcomes(r)).toEqual(['refunded', 'refunded']);
    const longId = `ipi_${'x'.repeat(300)}`;
    const stripeCard = uid('ic_');
    const s = await stripe(
      stripeEvent('issuing_transaction.created', {
        id: longId,
        object: 'issuing.transaction',
        amount: 300,
        card: stripeCard,
        currency: 'usd',
        type: 'refund',
        created: Math.floor(Date.now() / 1000),
      }),
    );
    expect(s.status).toBe(200);
    await env.persisted();
    const booked = await env.db.query<{ refund_id: string; amount: string; at_ok: boolean }>(
      `select refund_id, amount_cents::text as amount, refunded_at_ms > 0 as at_ok from refunds
        where processor = 'marqeta' and refund_id in (?, ?) order by amount_cents`,
      [noCard, old],
    );
    expect(booked).toEqual([
      { refund_id: noCard, amount: '125', at_ok: true },
      { refund_id: old, amount: '250', at_ok: true },
    ]);
    // Stripe's refund id too long to be real: booked under the event id.
    const stripeRows = await env.db.query<{ refund_id: string }>(
      `select refund_id from refunds where processor = 'stripe' and card_id = ?`,
      [stripeCard],
    );
    expect(stripeRows.map((x) => x.refund_id.slice(0, 4))).toEqual(['evt_']);
    const dead = await env.db.query<{ n: string }>(
      `select count(*)::text as n from dead_letters where type = 'refund.recorded'`,
    );
    expect(dead).toEqual([{ n: '0' }]);
  });
});

describe('replayed signed payloads beyond the tolerance', () => {
  it('Stripe and Lithic events signed 400 s ago or 400 s ahead are 401 and change nothing', async () => {
    const { shopperId, tripId, cardId, auth } = await approvedStripeAuthorization(env, 1500);
    const reversal = stripeAuthorizationUpdated(
      auth,
      cardId,
      { amount: 0, status: 'reversed' },
      { status: 'pending' },
    );
    const nowS = Math.floor(Date.now() / 1000);
    for (const t of [nowS - 400, nowS + 400]) {
      const headers = stripeHeaders(JSON.stringify(reversal), STRIPE_SECRET, t);
      const r = await postStripe(env.t, STRIPE_EVENTS, reversal, headers);
      expect(r.status).toBe(401);
      expect(r.json['error']).toBe('invalid_signature');
    }
    expect((await env.t.getTrip(shopperId, tripId)).json['authorized_cents']).toBe(1500);

    const lithic = await shopperWithCard(env, 'lithic');
    const token = randomUUID();
    expect(
      (
        await signed(
          '/v1/processors/lithic/asa',
          lithicAsaRequest({ token, cardId: lithic.cardId, amount: 1200, eventToken: randomUUID() }),
        )
      ).json['result'],
    ).toBe('APPROVED');
    const raw = JSON.stringify(
      lithicTransactionUpdated({
        token,
        cardId: lithic.cardId,
        events: [{ token: randomUUID(), type: 'AUTHORIZATION_REVERSAL', amount: -1200 }],
      }),
    );
    for (const offsetS of [-400, 400]) {
      const at = new Date(Date.now() + offsetS * 1000);
      const id = uid('msg_');
      const r = await env.t.request('POST', '/v1/processors/lithic/events', raw, {
        'Content-Type': 'application/json',
        'webhook-id': id,
        'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
        'webhook-signature': new Webhook(LITHIC_SECRET).sign(id, at, raw),
      });
      expect(r.status).toBe(401);
    }
    expect((await env.t.getTrip(lithic.shopperId, lithic.tripId)).json['authorized_cents']).toBe(1200);
  });
});
