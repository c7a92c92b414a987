// Stripe Issuing end to end (CONTRACT §7): requests signed with the stripe package's own
// test header helper, issuing_authorization.request events shaped like Stripe's, every
// decision reason, replays, incremental requests, 401s, events; then Redis and Postgres.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LedgerEnv } from '../ledger/helpers.js';
import {
  ledgerBalanced,
  postStripe,
  processorTrip,
  registerCard,
  retireCard,
  STRIPE_AUTHORIZATIONS,
  STRIPE_EVENTS,
  shopperWithCard,
  startProcessorEnv,
  stripeAuthorizationUpdated,
  stripeCapture,
  stripeEvent,
  stripeHeaders,
  stripeRequestEvent,
  uid,
} from './helpers.js';

let env: LedgerEnv;
beforeAll(async () => {
  env = await startProcessorEnv(17610, { MAX_SWIPES_PER_MINUTE: '6' });
});
afterAll(async () => {
  await env?.stop();
});

const AUTH_PATH = STRIPE_AUTHORIZATIONS;
const EVENTS_PATH = STRIPE_EVENTS;

const send = (event: Record<string, unknown>, headers?: Record<string, string>) =>
  postStripe(env.t, AUTH_PATH, event, headers);
const sendEvent = (event: Record<string, unknown>) => postStripe(env.t, EVENTS_PATH, event);

describe('Stripe Issuing authorizations', () => {
  it('the trip API accepts the §4b store fields and names a bad one', async () => {
    const bad = await env.t.putTrip(
      uid('s'),
      uid('t'),
      processorTrip({ merchant: { name: 'Safeway', address: '1 Main St', mccs: ['54'] } }),
    );
    expect(bad.status).toBe(400);
    expect(String(bad.json['message'])).toContain('merchant.mccs');
    const shopper = uid('s');
    const trip = uid('t');
    expect((await env.t.putTrip(shopper, trip, processorTrip())).status).toBe(201);
    expect((await env.t.putTrip(shopper, trip, processorTrip())).status).toBe(200);
  });

  it('approves within the allowance, answers Stripe-Version, replays a retry and decides an increment anew', async () => {
    const { shopperId, tripId, cardId } = await shopperWithCard(env, 'stripe');
    const authId = uid('iauth_');
    const event = stripeRequestEvent({ authorizationId: authId, cardId, amount: 2500 });
    const first = await send(event);
    expect(first.status).toBe(200);
    expect(first.headers.get('stripe-version')).toBe('2024-06-20');
    expect(first.json['approved']).toBe(true);
    expect(first.json['amount']).toBeUndefined();
    const meta = first.json['metadata'] as Record<string, string>;
    expect(meta['trip_id']).toBe(tripId);
    expect(meta['remaining_cents']).toBe('1513');

    // Stripe retries the same request: the same answer, nothing consumed.
    const retry = await send(event);
    expect(retry.status).toBe(200);
    expect(retry.text).toBe(first.text);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');

    // An incremental request on the same authorization is a new decision.
    const inc = await send(
      stripeRequestEvent({ authorizationId: authId, cardId, amount: 1000, history: [2500] }),
    );
    expect(inc.json['approved']).toBe(true);
    expect((inc.json['metadata'] as Record<string, string>)['authorization_id']).not.toBe(
      meta['authorization_id'],
    );
    const over = await send(
      stripeRequestEvent({ authorizationId: authId, cardId, amount: 600, history: [2500, 1000] }),
    );
    expect(over.json).toMatchObject({ approved: false, metadata: { reason: 'AMOUNT_EXCEEDS_ALLOWANCE' } });

    const trip = await env.t.getTrip(shopperId, tripId);
    expect(trip.json['authorized_cents']).toBe(3500);

    await env.persisted();
    const rows = await env.db.query<Record<string, string>>(
      `select processor, processor_card_id, processor_authorization_id, processor_request_id, transaction_id,
              amount_cents::text, requested_cents::text, decision, reason
         from authorizations where shopper_id = ? order by decided_ms, processor_request_id`,
      [shopperId],
    );
    expect(rows).toEqual([
      {
        processor: 'stripe',
        processor_card_id: cardId,
        processor_authorization_id: authId,
        processor_request_id: authId,
        transaction_id: `stripe:${authId}`,
        amount_cents: '2500',
        requested_cents: '2500',
        decision: 'approved',
        reason: null,
      },
      {
        processor: 'stripe',
        processor_card_id: cardId,
        processor_authorization_id: authId,
        processor_request_id: `${authId}:1`,
        transaction_id: `stripe:${authId}:1`,
        amount_cents: '1000',
        requested_cents: '1000',
        decision: 'approved',
        reason: null,
      },
      {
        processor: 'stripe',
        processor_card_id: cardId,
        processor_authorization_id: authId,
        processor_request_id: `${authId}:2`,
        transaction_id: `stripe:${authId}:2`,
        amount_cents: '600',
        requested_cents: '600',
        decision: 'declined',
        reason: 'AMOUNT_EXCEEDS_ALLOWANCE',
      },
    ]);
  });

  it('declines with each reason in metadata.reason', async () => {
    const reasonOf = async (r: Awaited<ReturnType<typeof send>>) => {
      expect(r.status).toBe(200);
      expect(r.json['approved']).toBe(false);
      return (r.json['metadata'] as Record<string, string>)['reason'];
    };
    // Unknown card, then a retired one.
    expect(
      await reasonOf(
        await send(stripeRequestEvent({ authorizationId: uid('iauth_'), cardId: uid('ic_'), amount: 100 })),
      ),
    ).toBe('UNKNOWN_SHOPPER');
    const retired = await shopperWithCard(env, 'stripe');
    expect((await retireCard(env, retired.shopperId, 'stripe', retired.cardId)).status).toBe(204);
    expect(
      await reasonOf(
        await send(
          stripeRequestEvent({ authorizationId: uid('iauth_'), cardId: retired.cardId, amount: 100 }),
        ),
      ),
    ).toBe('UNKNOWN_SHOPPER');

    const nothing = await shopperWithCard(env, 'stripe', { pick: false });
    expect(
      await reasonOf(
        await send(
          stripeRequestEvent({ authorizationId: uid('iauth_'), cardId: nothing.cardId, amount: 100 }),
        ),
      ),
    ).toBe('NO_ITEMS_PICKED');

    const s = await shopperWithCard(env, 'stripe');
    const one = (o: Partial<Parameters<typeof stripeRequestEvent>[0]>) =>
      send(stripeRequestEvent({ authorizationId: uid('iauth_'), cardId: s.cardId, amount: 100, ...o }));
    expect(await reasonOf(await one({ currency: 'eur' }))).toBe('CURRENCY_MISMATCH');
    // §4b: the network id is the strongest evidence both sides have; a different one does not match.
    expect(await reasonOf(await one({ merchant: { network_id: '999999999999' } }))).toBe('MERCHANT_MISMATCH');
    // No network id: the postal code decides.
    expect(await reasonOf(await one({ merchant: { network_id: '', postal_code: '10001' } }))).toBe(
      'MERCHANT_MISMATCH',
    );
    expect(await reasonOf(await one({ merchant: { name: 'WHOLE FOODS MARKET' } }))).toBe('MERCHANT_MISMATCH');
    // An MCC outside the store's allow-list.
    expect(await reasonOf(await one({ merchant: { category_code: '5812' } }))).toBe('MERCHANT_MISMATCH');
    // Postal code match without a network id: approved (first 5 characters).
    const byPostal = await one({ merchant: { network_id: '', postal_code: '94103-1234' } });
    expect(byPostal.json['approved']).toBe(true);
    // 6 swipes counted in the last minute (declines after the currency check count too).
    expect(await reasonOf(await one({}))).toBe('VELOCITY_LIMIT');

    // Same Stripe request id, different amount: IDEMPOTENCY_CONFLICT.
    const c = await shopperWithCard(env, 'stripe');
    const authId = uid('iauth_');
    expect(
      (await send(stripeRequestEvent({ authorizationId: authId, cardId: c.cardId, amount: 100 }))).json[
        'approved'
      ],
    ).toBe(true);
    expect(
      await reasonOf(
        await send(stripeRequestEvent({ authorizationId: authId, cardId: c.cardId, amount: 200 })),
      ),
    ).toBe('IDEMPOTENCY_CONFLICT');

    // A trip with no activity for trip_ttl_s: NO_ACTIVE_TRIP (its last activity moved back in time).
    const idle = await shopperWithCard(env, 'stripe');
    const tripKey = env.t.keys.trip(env.t.keys.partition(idle.shopperId), idle.shopperId, idle.tripId);
    await env.t.redis.hset(tripKey, 'activity_ms', Date.now() - (env.t.config.tripTtlS + 60) * 1000);
    expect(
      await reasonOf(
        await send(stripeRequestEvent({ authorizationId: uid('iauth_'), cardId: idle.cardId, amount: 100 })),
      ),
    ).toBe('NO_ACTIVE_TRIP');

    expect((await env.t.closeTrip(c.shopperId, c.tripId)).status).toBe(200);
    expect(
      await reasonOf(
        await send(stripeRequestEvent({ authorizationId: uid('iauth_'), cardId: c.cardId, amount: 100 })),
      ),
    ).toBe('TRIP_CLOSED');
  });

  it('refuses bad signatures with 401 and the error body of §1', async () => {
    const { cardId } = await shopperWithCard(env, 'stripe');
    const event = stripeRequestEvent({ authorizationId: uid('iauth_'), cardId, amount: 100 });
    const raw = JSON.stringify(event);
    const wrong = await send(event, stripeHeaders(raw, 'whsec_someone_else_0123456789'));
    expect(wrong.status).toBe(401);
    expect(wrong.json).toMatchObject({ error: 'invalid_signature' });
    expect(typeof wrong.json['message']).toBe('string');
    const stale = await send(event, stripeHeaders(raw, undefined, Math.floor(Date.now() / 1000) - 301));
    expect(stale.status).toBe(401);
    const tampered = await env.t.request(
      'POST',
      AUTH_PATH,
      raw.replace('"amount":100', '"amount":1'),
      stripeHeaders(raw),
    );
    expect(tampered.status).toBe(401);
    const none = await env.t.request('POST', AUTH_PATH, raw, { 'Content-Type': 'application/json' });
    expect(none.status).toBe(401);
    // The events endpoint too.
    expect(
      (await env.t.request('POST', EVENTS_PATH, raw, { 'Content-Type': 'application/json' })).status,
    ).toBe(401);
  });

  it('card registry: 201, 200 identical, 409 for another shopper, 204 on delete, bearer required', async () => {
    const { shopperId, cardId } = await shopperWithCard(env, 'stripe');
    expect((await registerCard(env, shopperId, 'stripe', cardId)).status).toBe(200);
    const other = await registerCard(env, uid('s'), 'stripe', cardId);
    expect(other.status).toBe(409);
    expect(other.json).toMatchObject({ error: 'card_conflict' });
    expect(
      (await registerCard(env, shopperId, 'stripe', cardId, 'wrong-token-0123456789abcdef')).status,
    ).toBe(401);
    expect((await registerCard(env, shopperId, 'visa', cardId)).status).toBe(400);
    expect((await retireCard(env, shopperId, 'stripe', cardId)).status).toBe(204);
    expect((await retireCard(env, shopperId, 'stripe', cardId)).status).toBe(204);
    // Retired: another shopper may take it.
    const next = uid('s');
    expect((await registerCard(env, next, 'stripe', cardId)).status).toBe(201);
    await env.persisted();
    const [row] = await env.db.query<Record<string, string>>(
      'select shopper_id, status, owners from processor_cards where processor = ? and card_id = ?',
      ['stripe', cardId],
    );
    expect(row).toEqual({ shopper_id: next, status: 'active', owners: shopperId });
  });

  it('maps capture, amount lowered, reversal and expiry events onto clearing, reversal and hold expiry', async () => {
    const { shopperId, tripId, cardId } = await shopperWithCard(env, 'stripe');
    const a1 = uid('iauth_');
    const a2 = uid('iauth_');
    const a3 = uid('iauth_');
    for (const [id, amount] of [
      [a1, 1000],
      [a2, 1200],
      [a3, 800],
    ] as const)
      expect((await send(stripeRequestEvent({ authorizationId: id, cardId, amount }))).json['approved']).toBe(
        true,
      );
    expect((await env.t.getTrip(shopperId, tripId)).json['authorized_cents']).toBe(3000);

    // a1: amount lowered 1000 → 700, then captured at 650.
    const lowered = await sendEvent(
      stripeAuthorizationUpdated(a1, cardId, { amount: 700, status: 'pending' }, { amount: 1000 }),
    );
    expect(lowered.status).toBe(200);
    expect(lowered.json['events']).toEqual([expect.objectContaining({ outcome: 'released' })]);
    const capture = stripeCapture(a1, cardId, 650);
    expect((await sendEvent(capture)).json['events']).toEqual([
      expect.objectContaining({ outcome: 'cleared' }),
    ]);
    // Redelivered: nothing more.
    expect((await sendEvent(capture)).status).toBe(200);
    // a2: reversed in full.
    expect(
      (
        await sendEvent(
          stripeEvent(
            'issuing_authorization.updated',
            { id: a2, card: cardId, amount: 0, status: 'reversed' },
            { status: 'pending' },
          ),
        )
      ).json['events'],
    ).toEqual([expect.objectContaining({ outcome: 'released' })]);
    // a3: expired.
    expect(
      (
        await sendEvent(
          stripeEvent(
            'issuing_authorization.updated',
            { id: a3, card: cardId, amount: 800, status: 'expired' },
            { status: 'pending' },
          ),
        )
      ).json['events'],
    ).toEqual([expect.objectContaining({ outcome: 'expired' })]);
    // A refund: booked once (the transaction id is the key), linked to a1; one naming no
    // authorization of ours is booked too, flagged for finance.
    const refundId = uid('ipi_');
    const refund = stripeEvent('issuing_transaction.created', {
      id: refundId,
      object: 'issuing.transaction',
      amount: 300,
      authorization: a1,
      card: cardId,
      currency: 'usd',
      type: 'refund',
    });
    expect((await sendEvent(refund)).json['events']).toEqual([
      expect.objectContaining({ outcome: 'refunded' }),
    ]);
    expect((await sendEvent(refund)).json['events']).toEqual([
      expect.objectContaining({ outcome: 'refund_replayed' }),
    ]);
    const strayId = uid('ipi_');
    const stray = stripeEvent('issuing_transaction.created', {
      id: strayId,
      amount: 120,
      authorization: null,
      card: cardId,
      currency: 'usd',
      type: 'refund',
    });
    expect((await sendEvent(stray)).json['events']).toEqual([
      expect.objectContaining({ outcome: 'refunded' }),
    ]);
    expect((await sendEvent(stripeEvent('issuing_card.updated', { id: cardId }))).status).toBe(200);

    // authorized: a1 cleared at 650, a2 0, a3 released.
    expect((await env.t.getTrip(shopperId, tripId)).json['authorized_cents']).toBe(650);
    await env.persisted();
    const rows = await env.db.query<Record<string, string | null>>(
      `select processor_authorization_id as id, reversed_cents::text as reversed, cleared_cents::text as cleared,
              (expired_ms is not null) as expired
         from authorizations where shopper_id = ? order by decided_ms`,
      [shopperId],
    );
    expect(rows).toEqual([
      { id: a1, reversed: '300', cleared: '650', expired: false },
      { id: a2, reversed: '1200', cleared: null, expired: false },
      { id: a3, reversed: '0', cleared: null, expired: true },
    ]);
    const refunds = await env.db.query<Record<string, string | boolean | null>>(
      `select r.refund_id, r.amount_cents::text as cents, r.currency, r.flagged, a.processor_authorization_id as auth,
              (select count(*)::text from ledger_transfers t where t.posting_id = r.event_id) as postings
         from refunds r left join authorizations a on a.authorization_id = r.authorization_id
        where r.refund_id in (?, ?) order by r.amount_cents desc`,
      [refundId, strayId],
    );
    expect(refunds).toEqual([
      { refund_id: refundId, cents: '300', currency: 'USD', flagged: false, auth: a1, postings: '1' },
      { refund_id: strayId, cents: '120', currency: 'USD', flagged: true, auth: null, postings: '1' },
    ]);
    expect(await ledgerBalanced(env)).toBe(true);
  });
});
