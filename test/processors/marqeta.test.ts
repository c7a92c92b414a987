// Marqeta Gateway JIT Funding end to end (CONTRACT §7): HTTP Basic, jit_funding echoed
// (402 with decline_reason on a decline), decimal major-unit amounts parsed exactly,
// replays, incremental requests, 401s and the webhook events.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LedgerEnv } from '../ledger/helpers.js';
import {
  ledgerBalanced,
  MARQETA_USER,
  marqetaHeaders,
  marqetaJitRequest,
  marqetaWebhook,
  shopperWithCard,
  startProcessorEnv,
  uid,
} from './helpers.js';

let env: LedgerEnv;
beforeAll(async () => {
  env = await startProcessorEnv(17630, { MAX_SWIPES_PER_MINUTE: '5' });
});
afterAll(async () => {
  await env?.stop();
});

const JIT = '/v1/processors/marqeta/jit';
const HOOKS = '/v1/processors/marqeta/webhooks';
const jit = (body: Record<string, unknown>, headers = marqetaHeaders()) =>
  env.t.request('POST', JIT, JSON.stringify(body), headers);
const hook = (body: Record<string, unknown>) =>
  env.t.request('POST', HOOKS, JSON.stringify(body), marqetaHeaders());

describe('Marqeta JIT Funding', () => {
  it('approves with the jit_funding echoed, amounts exact in major units; replays; incremental is new', async () => {
    const { shopperId, tripId, cardId } = await shopperWithCard(env, 'marqeta');
    const txn = uid('txn');
    const jitToken = uid('jit');
    // 10.29 × 100 is 1028.9999999999998 in floating point: the exact parser must give 1029.
    const body = marqetaJitRequest({ token: txn, jitToken, cardId, amount: '10.29' });
    const r = await jit(body);
    expect(r.status).toBe(200);
    expect(r.text).toBe(
      `{"jit_funding":{"token":"${jitToken}","method":"pgfs.authorization","user_token":"user_0146434d3c224906","acting_user_token":"user_0146434d3c224906","amount":10.29}}`,
    );
    const again = await jit(body);
    expect(again.text).toBe(r.text);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    const incToken = uid('jit');
    const inc = await jit(
      marqetaJitRequest({
        token: uid('txn'),
        jitToken: incToken,
        cardId,
        amount: '5.00',
        method: 'pgfs.authorization.incremental',
        originalJitToken: jitToken,
      }),
    );
    expect(inc.status).toBe(200);
    expect(inc.json).toEqual({
      jit_funding: {
        token: incToken,
        method: 'pgfs.authorization.incremental',
        user_token: 'user_0146434d3c224906',
        acting_user_token: 'user_0146434d3c224906',
        amount: 5,
        original_jit_funding_token: jitToken,
      },
    });
    expect((await env.t.getTrip(shopperId, tripId)).json['authorized_cents']).toBe(1529);
    await env.persisted();
    const rows = await env.db.query<Record<string, string>>(
      `select processor_request_id, processor_authorization_id, amount_cents::text as amount
         from authorizations where shopper_id = ? order by decided_ms`,
      [shopperId],
    );
    expect(rows).toEqual([
      { processor_request_id: jitToken, processor_authorization_id: txn, amount: '1029' },
      { processor_request_id: incToken, processor_authorization_id: expect.any(String), amount: '500' },
    ]);
  });

  it('declines with 402, the echo and the mapped decline_reason', async () => {
    const reason = async (body: Record<string, unknown>) => {
      const r = await jit(body);
      expect(r.status).toBe(402);
      const j = r.json['jit_funding'] as Record<string, unknown>;
      expect(j['token']).toBe((body['gpa_order'] as { jit_funding: { token: string } }).jit_funding.token);
      return j['decline_reason'];
    };
    const req = (cardId: string, o: Partial<Parameters<typeof marqetaJitRequest>[0]> = {}) =>
      marqetaJitRequest({ token: uid('txn'), jitToken: uid('jit'), cardId, amount: '1.00', ...o });
    expect(await reason(req(uid('mq')))).toBe('TRANSACTION_NOT_PERMITTED');
    const idle = await shopperWithCard(env, 'marqeta', { pick: false });
    expect(await reason(req(idle.cardId))).toBe('TRANSACTION_NOT_PERMITTED');
    const s = await shopperWithCard(env, 'marqeta');
    expect(await reason(req(s.cardId, { currency: 'EUR' }))).toBe('INVALID_MERCHANT');
    // No mid: the street address decides (§4b), and it differs.
    expect(
      await reason(
        req(s.cardId, {
          cardAcceptor: { mcc: '5411', name: 'SAFEWAY #1234', address: '125 Main St', postal_code: '94103' },
        }),
      ),
    ).toBe('INVALID_MERCHANT');
    // Same street, spelled out: a match.
    expect(
      (
        await jit(
          req(s.cardId, { cardAcceptor: { mcc: '5411', name: 'SAFEWAY #1234', address: '123 MAIN STREET' } }),
        )
      ).status,
    ).toBe(200);
    expect(await reason(req(s.cardId, { amount: '9999.99' }))).toBe('INSUFFICIENT_FUNDS');
    expect((await jit(req(s.cardId))).status).toBe(200);
    expect(await reason(req(s.cardId))).toBe('TRANSACTION_COUNT_LIMIT_EXCEEDED');
    const c = await shopperWithCard(env, 'marqeta');
    const jitToken = uid('jit');
    expect((await jit(req(c.cardId, { jitToken }))).status).toBe(200);
    expect(await reason(req(c.cardId, { jitToken, amount: '2.00' }))).toBe('DUPLICATE_TRANSACTION');
  });

  it('refuses bad Basic credentials with 401, bad amounts with 400', async () => {
    const { cardId } = await shopperWithCard(env, 'marqeta');
    const body = marqetaJitRequest({ token: uid('txn'), jitToken: uid('jit'), cardId, amount: '1.00' });
    const wrong = await jit(body, marqetaHeaders(MARQETA_USER, 'not-the-password-0123'));
    expect(wrong.status).toBe(401);
    expect(wrong.json['error']).toBe('invalid_signature');
    expect((await jit(body, { 'Content-Type': 'application/json' })).status).toBe(401);
    expect((await jit(body, { 'Content-Type': 'application/json', Authorization: 'Bearer x' })).status).toBe(
      401,
    );
    const raw = JSON.stringify(body).replace(/"amount":1(?=[,}])/g, '"amount":1.001');
    const bad = await env.t.request('POST', JIT, raw, marqetaHeaders());
    expect(bad.status).toBe(400);
    expect(String(bad.json['message'])).toContain('amount');
    expect((await env.t.request('POST', HOOKS, '{}', { 'Content-Type': 'application/json' })).status).toBe(
      401,
    );
  });

  it('maps authorization.reversal, .clearing and .reversal.issuerexpiration', async () => {
    const { shopperId, tripId, cardId } = await shopperWithCard(env, 'marqeta');
    const [a, b, c] = [uid('txn'), uid('txn'), uid('txn')];
    for (const [t, amount] of [
      [a, '10.00'],
      [b, '12.00'],
      [c, '8.00'],
    ] as const)
      expect((await jit(marqetaJitRequest({ token: t, jitToken: uid('jit'), cardId, amount }))).status).toBe(
        200,
      );
    const r = await hook(
      marqetaWebhook([
        { type: 'authorization.reversal', token: uid('rv'), preceding: a, cardId, amount: '2.50' },
        { type: 'authorization.clearing', token: uid('cl'), preceding: a, cardId, amount: '7.25' },
        { type: 'authorization.reversal', token: uid('rv'), preceding: b, cardId, amount: '12.00' },
        {
          type: 'authorization.reversal.issuerexpiration',
          token: uid('ex'),
          preceding: c,
          cardId,
          amount: '8.00',
        },
        { type: 'authorization.advice', token: uid('ad'), preceding: c, cardId, amount: '8.00' },
      ]),
    );
    expect(r.status).toBe(200);
    expect((r.json['events'] as Array<{ outcome: string }>).map((e) => e.outcome)).toEqual([
      'released',
      'cleared',
      'released',
      'expired',
      'ignored',
    ]);
    expect((await env.t.getTrip(shopperId, tripId)).json['authorized_cents']).toBe(725);
    expect(await ledgerBalanced(env)).toBe(true);
  });
  it('books refund and refund.authorization.clearing once each, linked or flagged', async () => {
    const { cardId } = await shopperWithCard(env, 'marqeta');
    const purchase = uid('txn');
    expect(
      (await jit(marqetaJitRequest({ token: purchase, jitToken: uid('jit'), cardId, amount: '20.00' })))
        .status,
    ).toBe(200);
    expect(
      (
        await hook(
          marqetaWebhook([
            {
              type: 'authorization.clearing',
              token: uid('cl'),
              preceding: purchase,
              cardId,
              amount: '20.00',
            },
          ]),
        )
      ).json['events'],
    ).toEqual([expect.objectContaining({ outcome: 'cleared' })]);
    // A merchant's refund of part of the purchase (Marqeta's `refund`, preceded by the purchase:
    // /simulate/clearing with is_refund), in decimal major units.
    const refundToken = uid('rf');
    const refund = marqetaWebhook([
      { type: 'refund', token: refundToken, preceding: purchase, cardId, amount: '7.35' },
    ]);
    expect((await hook(refund)).json['events']).toEqual([expect.objectContaining({ outcome: 'refunded' })]);
    // Redelivered, alone and inside a batch: booked once.
    expect((await hook(refund)).json['events']).toEqual([
      expect.objectContaining({ outcome: 'refund_replayed' }),
    ]);
    // A refund authorized on its own (refund.authorization: not money yet, and naming no earlier
    // transaction it is skipped) then cleared: the clearing's preceding transaction is the refund
    // authorization, none of ours: booked, flagged.
    const refundAuth = uid('ra');
    const refundClearing = uid('rc');
    const batch = marqetaWebhook([
      { type: 'refund.authorization', token: refundAuth, preceding: '', cardId, amount: '4.00' },
      {
        type: 'refund.authorization.clearing',
        token: refundClearing,
        preceding: refundAuth,
        cardId,
        amount: '4.00',
      },
      { type: 'refund', token: refundToken, preceding: purchase, cardId, amount: '7.35' },
    ]);
    const first = await hook(batch);
    expect(first.status).toBe(200);
    expect((first.json['events'] as Array<{ outcome: string }>).map((e) => e.outcome)).toEqual([
      'refunded',
      'refund_replayed',
    ]);
    expect(((await hook(batch)).json['events'] as Array<{ outcome: string }>).map((e) => e.outcome)).toEqual([
      'refund_replayed',
      'refund_replayed',
    ]);
    await env.persisted();
    const refunds = await env.db.query<Record<string, unknown>>(
      `select r.refund_id, r.amount_cents::text as cents, r.currency, r.flagged, r.authorization_ref as ref,
              a.processor_authorization_id as auth,
              (select count(*)::text from ledger_transfers t where t.posting_id = r.event_id) as postings
         from refunds r left join authorizations a on a.authorization_id = r.authorization_id
        where r.processor = 'marqeta' and r.refund_id in (?, ?, ?) order by r.amount_cents desc`,
      [refundToken, refundClearing, refundAuth],
    );
    expect(refunds).toEqual([
      {
        refund_id: refundToken,
        cents: '735',
        currency: 'USD',
        flagged: false,
        ref: purchase,
        auth: purchase,
        postings: '1',
      },
      {
        refund_id: refundClearing,
        cents: '400',
        currency: 'USD',
        flagged: true,
        ref: refundAuth,
        auth: null,
        postings: '1',
      },
    ]);
    expect(await ledgerBalanced(env)).toBe(true);
  });
});
