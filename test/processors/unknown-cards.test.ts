// Swipes on unknown or retired processor cards (docs/processors.md "Swipes on unknown cards"):
// answered UNKNOWN_SHOPPER in each processor's format, recorded once per request in
// `unknown_card_swipes` through the card partition's WAL and the persister, and bounded: over
// UNKNOWN_CARD_RECORDS_PER_MINUTE per partition a swipe is answered the same, not recorded, and
// counted in processor_unknown_card_swipes_dropped_total. Requests signed with each processor's
// own library (Stripe's test header, standardwebhooks) or its Basic credentials.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LedgerEnv } from '../ledger/helpers.js';
import {
  LITHIC_SECRET,
  lithicAsaRequest,
  lithicHeaders,
  marqetaHeaders,
  marqetaJitRequest,
  retireCard,
  shopperWithCard,
  startProcessorEnv,
  stripeHeaders,
  stripeRequestEvent,
  uid,
} from './helpers.js';

const CAP = 5;
let env: LedgerEnv;
beforeAll(async () => {
  // A correctness test (as test/integration/authorization-suite.ts): the longest decision timeout
  // and no shedding on event-loop lag, so a loaded 2-core machine does not turn an answer into a
  // storage-unavailable one or a 503 (both tested where they are the subject).
  env = await startProcessorEnv(19010, {
    UNKNOWN_CARD_RECORDS_PER_MINUTE: String(CAP),
    DECISION_TIMEOUT_MS: '900',
    OVERLOAD_LOOP_LAG_MS: '60000',
  });
});
afterAll(async () => {
  await env?.stop();
});

const post = (
  path: string,
  body: Record<string, unknown>,
  headers: (raw: string) => Record<string, string>,
) => {
  const raw = JSON.stringify(body);
  return env.t.request('POST', path, raw, headers(raw));
};
const stripeSwipe = (body: Record<string, unknown>) =>
  post('/v1/processors/stripe/authorizations', body, (raw) => stripeHeaders(raw));
const marqetaSwipe = (body: Record<string, unknown>) =>
  post('/v1/processors/marqeta/jit', body, () => marqetaHeaders());
const lithicSwipe = (body: Record<string, unknown>) =>
  post('/v1/processors/lithic/asa', body, (raw) => lithicHeaders(raw));

type Row = Record<string, string | null>;
async function rowsOf(processor: string, requestId: string): Promise<Row[]> {
  return env.db.query<Row>(
    `select card_id, card_status, authorization_ref, amount_cents::text as cents, currency, decision, reason,
            merchant_name, merchant_mcc
       from unknown_card_swipes where processor = ? and request_id = ?`,
    [processor, requestId],
  );
}

async function droppedCount(processor: string): Promise<number> {
  const m = await env.t.api.metrics.unknownCardSwipesDropped.get();
  return m.values.find((v) => v.labels['processor'] === processor && v.labels['cause'] === 'cap')?.value ?? 0;
}

describe('swipes on unknown and retired processor cards', () => {
  it('Stripe: declined UNKNOWN_SHOPPER, one row, a retry records nothing more', async () => {
    const cardId = uid('ic_');
    const authId = uid('iauth_');
    const event = stripeRequestEvent({ authorizationId: authId, cardId, amount: 1234 });
    const r = await stripeSwipe(event);
    expect(r.status).toBe(200);
    expect(r.json['approved']).toBe(false);
    expect((r.json['metadata'] as Record<string, string>)['reason']).toBe('UNKNOWN_SHOPPER');
    const again = await stripeSwipe(event);
    expect(again.text).toBe(r.text);
    await env.persisted();
    const requestId = String((event['data'] as { object: { id: string } }).object.id);
    const rows = await env.db.query<Row>(
      `select card_id, card_status, authorization_ref, amount_cents::text as cents, currency, decision, reason
         from unknown_card_swipes where processor = 'stripe' and card_id = ?`,
      [cardId],
    );
    expect(rows).toEqual([
      {
        card_id: cardId,
        card_status: 'unknown',
        authorization_ref: requestId,
        cents: '1234',
        currency: 'USD',
        decision: 'declined',
        reason: 'UNKNOWN_SHOPPER',
      },
    ]);
  });

  it('Marqeta: 402 with the jit_funding echoed, one row in cents, a retry records nothing more', async () => {
    const cardId = uid('mq');
    const txn = uid('txn');
    const body = marqetaJitRequest({ token: txn, jitToken: uid('jit'), cardId, amount: '10.29' });
    const r = await marqetaSwipe(body);
    expect(r.status).toBe(402);
    const jit = r.json['jit_funding'] as Record<string, unknown>;
    expect(jit['decline_reason']).toBeTypeOf('string');
    expect(jit['amount']).toBe(10.29);
    expect((await marqetaSwipe(body)).text).toBe(r.text);
    await env.persisted();
    const rows = await env.db.query<Row>(
      `select authorization_ref, amount_cents::text as cents, merchant_name, merchant_mcc, card_status
         from unknown_card_swipes where processor = 'marqeta' and card_id = ?`,
      [cardId],
    );
    expect(rows).toEqual([
      {
        authorization_ref: txn,
        cents: '1029',
        merchant_name: 'SAFEWAY #1234',
        merchant_mcc: '5411',
        card_status: 'unknown',
      },
    ]);
  });

  it('Lithic: CARD_PAUSED for a retired card, one row naming it retired; a forged request is 401 and not recorded', async () => {
    const s = await shopperWithCard(env, 'lithic');
    expect((await retireCard(env, s.shopperId, 'lithic', s.cardId)).status).toBe(204);
    const token = randomUUID();
    const eventToken = randomUUID();
    const body = lithicAsaRequest({ token, cardId: s.cardId, amount: 700, eventToken });
    const r = await lithicSwipe(body);
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ result: 'CARD_PAUSED', token });
    expect((await lithicSwipe(body)).text).toBe(r.text);
    // Signed with someone else's secret: refused before any lookup or record.
    const forgedCard = randomUUID();
    const forged = lithicAsaRequest({
      token: randomUUID(),
      cardId: forgedCard,
      amount: 1,
      eventToken: randomUUID(),
    });
    const other = `whsec_${Buffer.from('not-the-lithic-secret-012345678').toString('base64')}`;
    expect(LITHIC_SECRET).not.toBe(other);
    const raw = JSON.stringify(forged);
    expect(
      (await env.t.request('POST', '/v1/processors/lithic/asa', raw, lithicHeaders(raw, 'msg_f', other)))
        .status,
    ).toBe(401);
    await env.persisted();
    expect(await rowsOf('lithic', eventToken)).toEqual([
      {
        card_id: s.cardId,
        card_status: 'retired',
        authorization_ref: token,
        cents: '700',
        currency: 'USD',
        decision: 'declined',
        reason: 'UNKNOWN_SHOPPER',
        merchant_name: expect.any(String),
        merchant_mcc: expect.any(String),
      },
    ]);
    const forgedRows = await env.db.query(`select 1 from unknown_card_swipes where card_id = ?`, [
      forgedCard,
    ]);
    expect(forgedRows).toEqual([]);
  });

  it('a flood beyond the cap: the same answers, rows up to the cap, the excess counted dropped', async () => {
    const keys = env.t.keys;
    // Cards of one partition: the cap is per partition and minute.
    const partition = 3;
    const cards: string[] = [];
    while (cards.length < 4 * CAP) {
      const c = randomUUID();
      if (keys.cardPartition('lithic', c) === partition) cards.push(c);
    }
    for (let attempt = 0; ; attempt++) {
      const windowOf = () => Math.floor(Date.now() / 60_000);
      const window = windowOf();
      const counter = `${keys.base(partition)}ucs-n:${window}`;
      const used = Number((await env.t.redis.get(counter)) ?? '0');
      const droppedBefore = await droppedCount('lithic');
      const sent: string[] = [];
      for (const cardId of cards) {
        const eventToken = randomUUID();
        const token = randomUUID();
        const r = await lithicSwipe(lithicAsaRequest({ token, cardId, amount: 100, eventToken }));
        expect(r.json).toEqual({ result: 'CARD_PAUSED', token });
        sent.push(eventToken);
      }
      // The flood straddled a minute (two windows, two caps): once more in one window.
      if (windowOf() !== window && attempt < 2) {
        cards.length = 0;
        while (cards.length < 4 * CAP) {
          const c = randomUUID();
          if (keys.cardPartition('lithic', c) === partition) cards.push(c);
        }
        continue;
      }
      const recorded = Math.max(0, CAP - used);
      await env.persisted();
      const [{ n }] = (await env.db.query<{ n: string }>(
        `select count(*)::text as n from unknown_card_swipes where processor = 'lithic' and request_id = any(?)`,
        [sent],
      )) as [{ n: string }];
      expect(Number(n)).toBe(recorded);
      expect((await droppedCount('lithic')) - droppedBefore).toBe(sent.length - recorded);
      // Redis holds one marker per recorded request, none for the dropped ones.
      const markers = await Promise.all(
        sent.map((t) => env.t.redis.exists(`${keys.base(partition)}ucs:lithic:${t}`)),
      );
      expect(markers.reduce((a, b) => a + b, 0)).toBe(recorded);
      break;
    }
  });
});
