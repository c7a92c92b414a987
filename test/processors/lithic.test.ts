// Lithic Auth Stream Access end to end (CONTRACT §7): requests signed with the
// standardwebhooks package's signer, ASA payloads per lithic-openapi, the decline mapping,
// replays, incremental requests, 401s and card_transaction.updated events.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LedgerEnv } from '../ledger/helpers.js';
import {
  ledgerBalanced,
  lithicAsaRequest,
  lithicHeaders,
  lithicTransactionUpdated,
  shopperWithCard,
  startProcessorEnv,
} from './helpers.js';

let env: LedgerEnv;
beforeAll(async () => {
  env = await startProcessorEnv(17620, { MAX_SWIPES_PER_MINUTE: '5' });
});
afterAll(async () => {
  await env?.stop();
});

const ASA = '/v1/processors/lithic/asa';
const EVENTS = '/v1/processors/lithic/events';

async function asa(body: Record<string, unknown>, msgId?: string, headers?: Record<string, string>) {
  const raw = JSON.stringify(body);
  return env.t.request('POST', ASA, raw, headers ?? lithicHeaders(raw, msgId));
}
async function event(body: Record<string, unknown>) {
  const raw = JSON.stringify(body);
  return env.t.request('POST', EVENTS, raw, lithicHeaders(raw));
}

describe('Lithic ASA', () => {
  it('approves with result and token, replays a redelivery, decides an incremental request anew', async () => {
    const { shopperId, tripId, cardId } = await shopperWithCard(env, 'lithic');
    const token = randomUUID();
    const first = lithicAsaRequest({ token, cardId, amount: 2000, eventToken: randomUUID() });
    const a = await asa(first, 'msg_a');
    expect(a.status).toBe(200);
    expect(a.json).toEqual({ result: 'APPROVED', token });
    const again = await asa(first, 'msg_a');
    expect(again.text).toBe(a.text);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    // Incremental: same transaction token, a new event token.
    const inc = await asa(lithicAsaRequest({ token, cardId, amount: 1500, eventToken: randomUUID() }));
    expect(inc.json).toEqual({ result: 'APPROVED', token });
    // Older payloads: no `amounts`, no event_token (the message id tells requests apart).
    const legacy = lithicAsaRequest({ token: randomUUID(), cardId, amount: 600, legacyAmount: true });
    const l1 = await asa(legacy, 'msg_legacy');
    expect(l1.json['result']).toBe('INSUFFICIENT_FUNDS');
    expect((await asa(legacy, 'msg_legacy')).text).toBe(l1.text);
    expect((await env.t.getTrip(shopperId, tripId)).json['authorized_cents']).toBe(3500);
  });

  it('maps every §1 reason onto its Lithic result', async () => {
    const result = async (body: Record<string, unknown>) => {
      const r = await asa(body);
      expect(r.status).toBe(200);
      expect(r.json['token']).toBe(body['token']);
      return r.json['result'];
    };
    expect(await result(lithicAsaRequest({ token: randomUUID(), cardId: randomUUID(), amount: 100 }))).toBe(
      'CARD_PAUSED',
    );
    const idle = await shopperWithCard(env, 'lithic', { pick: false });
    expect(await result(lithicAsaRequest({ token: randomUUID(), cardId: idle.cardId, amount: 100 }))).toBe(
      'CARD_PAUSED',
    );
    const s = await shopperWithCard(env, 'lithic');
    const one = (o: Partial<Parameters<typeof lithicAsaRequest>[0]> = {}) =>
      lithicAsaRequest({
        token: randomUUID(),
        cardId: s.cardId,
        amount: 100,
        eventToken: randomUUID(),
        ...o,
      });
    expect(await result(one({ currency: 'CAD' }))).toBe('UNAUTHORIZED_MERCHANT');
    expect(await result(one({ merchant: { acceptor_id: '000000000001' } }))).toBe('UNAUTHORIZED_MERCHANT');
    expect(await result(one({ merchant: { mcc: '5812' } }))).toBe('UNAUTHORIZED_MERCHANT');
    expect(await result(one({ amount: 999_999 }))).toBe('INSUFFICIENT_FUNDS');
    expect(await result(one({}))).toBe('APPROVED');
    // 5 swipes counted in the last minute (declines after the trip checks count too).
    expect(await result(one({}))).toBe('VELOCITY_EXCEEDED');
    // Same event token, different amount: IDEMPOTENCY_CONFLICT → SUSPECTED_FRAUD.
    const c = await shopperWithCard(env, 'lithic');
    const eventToken = randomUUID();
    const token = randomUUID();
    expect(await result(lithicAsaRequest({ token, cardId: c.cardId, amount: 100, eventToken }))).toBe(
      'APPROVED',
    );
    expect(await result(lithicAsaRequest({ token, cardId: c.cardId, amount: 300, eventToken }))).toBe(
      'SUSPECTED_FRAUD',
    );
    await env.t.closeTrip(c.shopperId, c.tripId);
    expect(await result(lithicAsaRequest({ token: randomUUID(), cardId: c.cardId, amount: 100 }))).toBe(
      'CARD_PAUSED',
    );
  });

  it('refuses bad Standard Webhooks signatures with 401', async () => {
    const { cardId } = await shopperWithCard(env, 'lithic');
    const body = lithicAsaRequest({ token: randomUUID(), cardId, amount: 100 });
    const raw = JSON.stringify(body);
    const other = `whsec_${Buffer.from('someone-else-secret-0123456789').toString('base64')}`;
    const wrong = await asa(body, undefined, lithicHeaders(raw, 'msg_x', other));
    expect(wrong.status).toBe(401);
    expect(wrong.json['error']).toBe('invalid_signature');
    const headers = lithicHeaders(raw, 'msg_y');
    const tampered = await env.t.request('POST', ASA, raw.replace('"amount":100', '"amount":1'), headers);
    expect(tampered.status).toBe(401);
    const stale = { ...headers, 'webhook-timestamp': String(Math.floor(Date.now() / 1000) - 400) };
    expect((await env.t.request('POST', ASA, raw, stale)).status).toBe(401);
    expect((await env.t.request('POST', EVENTS, raw, { 'Content-Type': 'application/json' })).status).toBe(
      401,
    );
  });

  it('applies AUTHORIZATION_REVERSAL, CLEARING and AUTHORIZATION_EXPIRY; ignores the rest', async () => {
    const { shopperId, tripId, cardId } = await shopperWithCard(env, 'lithic');
    const t1 = randomUUID();
    const t2 = randomUUID();
    // t1: an authorization and an incremental one (2000 + 1000).
    expect(
      (await asa(lithicAsaRequest({ token: t1, cardId, amount: 2000, eventToken: randomUUID() }))).json[
        'result'
      ],
    ).toBe('APPROVED');
    expect(
      (await asa(lithicAsaRequest({ token: t1, cardId, amount: 1000, eventToken: randomUUID() }))).json[
        'result'
      ],
    ).toBe('APPROVED');
    expect(
      (await asa(lithicAsaRequest({ token: t2, cardId, amount: 500, eventToken: randomUUID() }))).json[
        'result'
      ],
    ).toBe('APPROVED');
    expect((await env.t.getTrip(shopperId, tripId)).json['authorized_cents']).toBe(3500);

    const rev = randomUUID();
    const clr = randomUUID();
    // A partial reversal of 1200 (the increment first, then 200 of the first), then clearing at 1700.
    const update = lithicTransactionUpdated({
      token: t1,
      cardId,
      events: [
        { token: randomUUID(), type: 'AUTHORIZATION', amount: 2000 },
        { token: rev, type: 'AUTHORIZATION_REVERSAL', amount: -1200 },
        { token: clr, type: 'CLEARING', amount: 1700 },
      ],
    });
    const r = await event(update);
    expect(r.status).toBe(200);
    expect((r.json['events'] as Array<{ outcome: string }>).map((e) => e.outcome)).toEqual([
      'ignored',
      'released',
      'cleared',
    ]);
    // Redelivered: nothing changes.
    expect((await event(update)).status).toBe(200);
    expect(
      (
        await event(
          lithicTransactionUpdated({
            token: t2,
            cardId,
            events: [{ token: randomUUID(), type: 'AUTHORIZATION_EXPIRY', amount: 500 }],
          }),
        )
      ).json['events'],
    ).toEqual([expect.objectContaining({ outcome: 'expired' })]);
    // A RETURN on t1: booked once (its event token is the key), linked to t1's authorization.
    const ret = randomUUID();
    const returned = lithicTransactionUpdated({
      token: t1,
      cardId,
      events: [{ token: ret, type: 'RETURN', amount: 400 }],
    });
    expect((await event(returned)).json['events']).toEqual([
      expect.objectContaining({ outcome: 'refunded' }),
    ]);
    expect((await event(returned)).json['events']).toEqual([
      expect.objectContaining({ outcome: 'refund_replayed' }),
    ]);
    expect((await event({ event_type: 'card.created', card_token: cardId })).status).toBe(200);

    expect((await env.t.getTrip(shopperId, tripId)).json['authorized_cents']).toBe(1700);
    await env.persisted();
    const rows = await env.db.query<Record<string, unknown>>(
      `select processor_authorization_id as ref, amount_cents::text as amount, reversed_cents::text as reversed,
              cleared_cents::text as cleared, (expired_ms is not null) as expired
         from authorizations where shopper_id = ? order by decided_ms`,
      [shopperId],
    );
    expect(rows).toEqual([
      { ref: t1, amount: '2000', reversed: '200', cleared: '1700', expired: false },
      { ref: t1, amount: '1000', reversed: '1000', cleared: null, expired: false },
      { ref: t2, amount: '500', reversed: '0', cleared: null, expired: true },
    ]);
    const refunds = await env.db.query<Record<string, unknown>>(
      `select r.amount_cents::text as cents, r.flagged, a.processor_authorization_id as ref
         from refunds r join authorizations a on a.authorization_id = r.authorization_id
        where r.processor = 'lithic' and r.refund_id = ?`,
      [ret],
    );
    expect(refunds).toEqual([{ cents: '400', flagged: false, ref: t1 }]);
    expect(await ledgerBalanced(env)).toBe(true);
  });
});
