// Which processor events are refunds, and what each books (src/processors/events.ts);
// the end-to-end booking is in stripe.test.ts, marqeta.test.ts and lithic.test.ts.
import { describe, expect, it } from 'vitest';
import { isObject, parseJson } from '../../src/domain/json.js';
import { parseLithicEvents, parseMarqetaEvents, parseStripeEvents } from '../../src/processors/events.js';

function body(o: unknown) {
  const r = parseJson(JSON.stringify(o));
  if (!r.ok || !isObject(r.value)) throw new Error('test body is not a JSON object');
  return r.value;
}
const NOW = 1_760_000_000_000;

describe('refund events', () => {
  it('Stripe: a refund transaction is keyed by its own id and may name no authorization', () => {
    const events = parseStripeEvents(
      body({
        id: 'evt_1',
        type: 'issuing_transaction.created',
        data: {
          object: {
            id: 'ipi_9',
            type: 'refund',
            amount: 250,
            currency: 'eur',
            card: 'ic_1',
            authorization: null,
          },
        },
      }),
      NOW,
    );
    expect(events).toEqual([
      {
        processor: 'stripe',
        cardId: 'ic_1',
        authorizationRef: '',
        eventId: 'ipi_9',
        action: { kind: 'refund', amountCents: 250, currency: 'EUR', refundedAtMs: NOW },
      },
    ]);
  });

  it('Marqeta: refund and refund.authorization.clearing are refunds (decimal amounts); refund.authorization is not', () => {
    const events = parseMarqetaEvents(
      body({
        transactions: [
          { token: 'r1', type: 'refund', amount: 12.5, currency_code: 'USD', card_token: 'c1' },
          {
            token: 'r2',
            type: 'refund.authorization.clearing',
            amount: 3,
            card_token: 'c1',
            preceding_related_transaction_token: 'a1',
          },
          {
            token: 'r3',
            type: 'refund.authorization',
            amount: 3,
            card_token: 'c1',
            preceding_related_transaction_token: 'a1',
          },
        ],
      }),
      NOW,
    );
    expect(events.map((e) => [e.eventId, e.authorizationRef, e.action])).toEqual([
      ['r1', '', { kind: 'refund', amountCents: 1250, currency: 'USD', refundedAtMs: NOW }],
      ['r2', 'a1', { kind: 'refund', amountCents: 300, currency: '', refundedAtMs: NOW }],
      ['r3', 'a1', { kind: 'ignore', why: 'type refund.authorization' }],
    ]);
  });

  it('Lithic: a RETURN is a refund of the cardholder amount, keyed by its event token', () => {
    const events = parseLithicEvents(
      body({
        event_type: 'card_transaction.updated',
        token: 'tx1',
        card_token: 'c1',
        events: [
          {
            token: 'e1',
            type: 'RETURN',
            amount: -400,
            amounts: { cardholder: { amount: -400, currency: 'USD' } },
          },
        ],
      }),
      NOW,
    );
    expect(events).toEqual([
      {
        processor: 'lithic',
        cardId: 'c1',
        authorizationRef: 'tx1',
        eventId: 'e1',
        action: { kind: 'refund', amountCents: 400, currency: 'USD', refundedAtMs: NOW },
      },
    ]);
  });
});
