// Processors under a frozen Redis (fail-open answers in each format), partial approvals
// behind PARTIAL_APPROVALS, and endpoints with no secrets configured (refuse all).
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startTestApi, swipeBody, type TestApi } from '../helpers/api.js';
import { type PrivateRedis, startPrivateRedis } from '../failopen/privateRedis.js';
import {
  lithicAsaRequest,
  lithicHeaders,
  marqetaHeaders,
  marqetaJitRequest,
  processorEnv,
  registerCard,
  postStripe,
  STRIPE_AUTHORIZATIONS,
  STRIPE_EVENTS,
  shopperWithCard,
  stripeEvent,
  stripeRequestEvent,
  uid,
} from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'sa-proc-failopen-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function clients(h: TestApi) {
  return {
    stripe(event: Record<string, unknown>) {
      return postStripe(h, STRIPE_AUTHORIZATIONS, event);
    },
    lithic(body: Record<string, unknown>) {
      const raw = JSON.stringify(body);
      return h.request('POST', '/v1/processors/lithic/asa', raw, lithicHeaders(raw));
    },
    marqeta(body: Record<string, unknown>) {
      return h.request('POST', '/v1/processors/marqeta/jit', JSON.stringify(body), marqetaHeaders());
    },
  };
}

describe('fail-open in each processor format', () => {
  let redis: PrivateRedis;
  let h: TestApi;
  beforeAll(async () => {
    redis = await startPrivateRedis(17660);
    h = await startTestApi(
      processorEnv(17661, { REDIS_URL: redis.url, FAILOPEN_JOURNAL_PATH: join(dir, 'a.jsonl') }),
    );
  });
  afterAll(async () => {
    redis?.thaw();
    await h?.stop();
    await redis?.stop();
  });

  test('a frozen Redis: known cards fail open (capped), unknown cards are refused, replay lands once', async () => {
    const c = clients(h);
    const { shopperId, tripId, cardId: stripeCard } = await shopperWithCard({ t: h }, 'stripe');
    const lithicCard = randomUUID();
    const marqetaCard = uid('mq');
    expect((await registerCard({ t: h }, shopperId, 'lithic', lithicCard)).status).toBe(201);
    expect((await registerCard({ t: h }, shopperId, 'marqeta', marqetaCard)).status).toBe(201);
    // Normal decisions first: this pod learns the cards (and the trip's allowance).
    expect(
      (
        await c.stripe(
          stripeRequestEvent({ authorizationId: uid('iauth_'), cardId: stripeCard, amount: 100 }),
        )
      ).json['approved'],
    ).toBe(true);
    expect(
      (
        await c.lithic(
          lithicAsaRequest({
            token: randomUUID(),
            cardId: lithicCard,
            amount: 100,
            eventToken: randomUUID(),
          }),
        )
      ).json['result'],
    ).toBe('APPROVED');
    expect(
      (
        await c.marqeta(
          marqetaJitRequest({ token: uid('txn'), jitToken: uid('jit'), cardId: marqetaCard, amount: '1.00' }),
        )
      ).status,
    ).toBe(200);
    const sacrificial = uid('s');

    redis.freeze();
    try {
      for (let i = 0; i < 5; i++) await h.swipe(swipeBody(sacrificial, '0.01'));
      const iauth = uid('iauth_');
      const event = stripeRequestEvent({ authorizationId: iauth, cardId: stripeCard, amount: 500 });
      const s1 = await c.stripe(event);
      expect(s1.status).toBe(200);
      expect(s1.headers.get('stripe-version')).toBe('2024-06-20');
      expect(s1.json).toMatchObject({ approved: true, metadata: { mode: 'fail_open' } });
      expect((await c.stripe(event)).text).toBe(s1.text);
      const lt = randomUUID();
      expect(
        (
          await c.lithic(
            lithicAsaRequest({ token: lt, cardId: lithicCard, amount: 300, eventToken: randomUUID() }),
          )
        ).json,
      ).toEqual({ result: 'APPROVED', token: lt });
      expect(
        (
          await c.marqeta(
            marqetaJitRequest({
              token: uid('txn'),
              jitToken: uid('jit'),
              cardId: marqetaCard,
              amount: '2.00',
            }),
          )
        ).status,
      ).toBe(200);
      // Above FAILOPEN_MAX_CENTS (default 10000): refused in each format.
      expect(
        (
          await c.stripe(
            stripeRequestEvent({ authorizationId: uid('iauth_'), cardId: stripeCard, amount: 10_001 }),
          )
        ).json,
      ).toMatchObject({ approved: false, metadata: { reason: 'STORAGE_UNAVAILABLE' } });
      // Cards this pod never saw: whose they are is unknown without Redis.
      expect(
        (
          await c.stripe(
            stripeRequestEvent({ authorizationId: uid('iauth_'), cardId: uid('ic_'), amount: 100 }),
          )
        ).json,
      ).toMatchObject({ approved: false, metadata: { reason: 'STORAGE_UNAVAILABLE' } });
      expect(
        (await c.lithic(lithicAsaRequest({ token: randomUUID(), cardId: randomUUID(), amount: 100 }))).json[
          'result'
        ],
      ).toBe('INSUFFICIENT_FUNDS');
      const mq = await c.marqeta(
        marqetaJitRequest({ token: uid('txn'), jitToken: uid('jit'), cardId: uid('mq'), amount: '1.00' }),
      );
      expect(mq.status).toBe(402);
      expect((mq.json['jit_funding'] as Record<string, unknown>)['decline_reason']).toBe(
        'TRANSACTION_NOT_PERMITTED',
      );
    } finally {
      redis.thaw();
    }
    await until(
      'journal drained',
      async () => (await h.api.metrics.failopenJournalPending.get()).values[0]?.value === 0,
    );
    const replayed = (await h.walEvents()).filter(
      (e) => e.t === 'failopen.replayed' && e.d['shopper_id'] === shopperId,
    );
    expect(replayed.map((e) => e.d['amount_cents']).sort()).toEqual([200, 300, 500]);
    expect(replayed.some((e) => e.d['transaction_id'] === `stripe:${iauthOf(replayed)}`)).toBe(true);
    // Counted against the trip once Redis is back: 3 × 100 normal + 1000 fail-open.
    expect((await h.getTrip(shopperId, tripId)).json['authorized_cents']).toBe(1300);
    // The replay keeps the processor's ids, so the processor's later events find the approval.
    const stripeReplay = replayed.find((e) => e.d['processor'] === 'stripe');
    expect(stripeReplay?.d).toMatchObject({
      processor_card_id: stripeCard,
      processor_request_id: iauthOf(replayed),
    });
    const capture = stripeEvent('issuing_transaction.created', {
      id: uid('ipi_'),
      amount: -450,
      authorization: iauthOf(replayed),
      card: stripeCard,
      type: 'capture',
    });
    const cleared = await postStripe(h, STRIPE_EVENTS, capture);
    expect(cleared.json['events']).toEqual([expect.objectContaining({ outcome: 'cleared' })]);
    expect((await h.getTrip(shopperId, tripId)).json['authorized_cents']).toBe(1250);
  });
});

function iauthOf(events: Array<{ d: Record<string, unknown> }>): string {
  const t = events.map((e) => String(e.d['transaction_id'])).find((x) => x.startsWith('stripe:'));
  return (t ?? '').slice('stripe:'.length);
}

describe('partial approvals (PARTIAL_APPROVALS=true)', () => {
  let h: TestApi;
  beforeAll(async () => {
    h = await startTestApi(processorEnv(17670, { PARTIAL_APPROVALS: 'true' }));
  });
  afterAll(async () => {
    await h?.stop();
  });

  test('Stripe approves what is left when is_amount_controllable; Lithic when partial_approval_capable; Marqeta never', async () => {
    const c = clients(h);
    const s = await shopperWithCard({ t: h }, 'stripe');
    // Allowance 4013: ask 5000, controllable → approved with amount 4013.
    const r = await c.stripe(
      stripeRequestEvent({
        authorizationId: uid('iauth_'),
        cardId: s.cardId,
        amount: 5000,
        controllable: true,
      }),
    );
    expect(r.json).toMatchObject({ approved: true, amount: 4013, metadata: { remaining_cents: '0' } });
    // Nothing left: a decline, not a partial approval of 0.
    const none = await c.stripe(
      stripeRequestEvent({
        authorizationId: uid('iauth_'),
        cardId: s.cardId,
        amount: 100,
        controllable: true,
      }),
    );
    expect(none.json).toMatchObject({ approved: false, metadata: { reason: 'AMOUNT_EXCEEDS_ALLOWANCE' } });
    const notControllable = await shopperWithCard({ t: h }, 'stripe');
    expect(
      (
        await c.stripe(
          stripeRequestEvent({
            authorizationId: uid('iauth_'),
            cardId: notControllable.cardId,
            amount: 5000,
          }),
        )
      ).json['approved'],
    ).toBe(false);

    const l = await shopperWithCard({ t: h }, 'lithic');
    const token = randomUUID();
    const lr = await c.lithic(
      lithicAsaRequest({
        token,
        cardId: l.cardId,
        amount: 5000,
        partialCapable: true,
        eventToken: randomUUID(),
      }),
    );
    expect(lr.json).toEqual({ result: 'APPROVED', token, approved_amount: 4013 });
    const l2 = await shopperWithCard({ t: h }, 'lithic');
    expect(
      (await c.lithic(lithicAsaRequest({ token: randomUUID(), cardId: l2.cardId, amount: 5000 }))).json[
        'result'
      ],
    ).toBe('INSUFFICIENT_FUNDS');

    const m = await shopperWithCard({ t: h }, 'marqeta');
    expect(
      (
        await c.marqeta(
          marqetaJitRequest({ token: uid('txn'), jitToken: uid('jit'), cardId: m.cardId, amount: '50.00' }),
        )
      ).status,
    ).toBe(402);

    // The WAL keeps what was asked next to what was approved.
    const decided = (await h.walEvents()).filter(
      (e) => e.t === 'authorization.decided' && e.d['shopper_id'] === s.shopperId,
    );
    expect(decided[0]?.d).toMatchObject({ amount_cents: 4013, requested_cents: 5000, processor: 'stripe' });
    expect((await h.getTrip(s.shopperId, s.tripId)).json['allowance_cents']).toBe(0);
  });
});

describe('no processor secrets configured', () => {
  let h: TestApi;
  beforeAll(async () => {
    h = await startTestApi({ PORT: '17680', METRICS_PORT: '17681' });
  });
  afterAll(async () => {
    await h?.stop();
  });

  test('every processor endpoint refuses with 401', async () => {
    const c = clients(h);
    expect(
      (
        await c.stripe(
          stripeRequestEvent({ authorizationId: uid('iauth_'), cardId: uid('ic_'), amount: 100 }),
        )
      ).status,
    ).toBe(401);
    expect(
      (await c.lithic(lithicAsaRequest({ token: randomUUID(), cardId: randomUUID(), amount: 100 }))).status,
    ).toBe(401);
    expect(
      (
        await c.marqeta(
          marqetaJitRequest({ token: uid('txn'), jitToken: uid('jit'), cardId: uid('mq'), amount: '1.00' }),
        )
      ).status,
    ).toBe(401);
    for (const path of [
      '/v1/processors/stripe/events',
      '/v1/processors/lithic/events',
      '/v1/processors/marqeta/webhooks',
    ])
      expect(
        (
          await h.request('POST', path, '{}', {
            'Content-Type': 'application/json',
            Authorization: 'Basic Og==',
          })
        ).status,
      ).toBe(401);
  });
});
