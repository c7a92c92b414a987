// The ledger's building blocks (src/ledger/postings.ts), without a database:
// what a movement becomes, and what is refused before anything is written.
import { describe, expect, it } from 'vitest';
import { assertValid, KnownAccounts, move, type Posting, postingFor } from '../../src/ledger/postings.js';
import type { WalEvent } from '../../src/persister/events.js';

function posting(transfers: Posting['transfers']): Posting {
  return {
    postingId: 'p1',
    kind: 'adjustment',
    authorizationId: null,
    transactionId: 't1',
    shopperId: 's1',
    currency: 'USD',
    eventMs: 1,
    transfers,
  };
}

describe('move', () => {
  it('is one transfer from the debit to the credit account', () => {
    expect(move('adjustments', 'merchant_settlement_payable', 7)).toEqual([
      { from: 'adjustments', to: 'merchant_settlement_payable', cents: 7 },
    ]);
  });

  it('turns a negative amount around and moves nothing for zero', () => {
    expect(move('adjustments', 'merchant_settlement_payable', -7)).toEqual([
      { from: 'merchant_settlement_payable', to: 'adjustments', cents: 7 },
    ]);
    expect(move('adjustments', 'merchant_settlement_payable', 0)).toEqual([]);
  });
});

describe('assertValid', () => {
  it('accepts positive safe integers between two accounts', () => {
    expect(() => assertValid(posting(move('a', 'b', 1)))).not.toThrow();
  });

  it.each([
    ['NaN', Number.NaN],
    ['a fraction', 1.5],
    ['beyond 2^53', 2 ** 53],
    ['Infinity', Number.POSITIVE_INFINITY],
  ])('refuses %s cents instead of dropping it', (_name, cents) => {
    expect(() => assertValid(posting(move('a', 'b', cents)))).toThrow(/bad transfer amount/);
  });

  it('refuses a transfer from an account to itself', () => {
    expect(() => assertValid(posting(move('a', 'a', 5)))).toThrow(/to itself/);
  });
});

describe('postingFor', () => {
  it('posts a clearing as two transfers in line order: release, then settle', () => {
    const e = {
      type: 'clearing.posted',
      eventId: 'e2',
      partition: 0,
      streamId: '1-0',
      pos: '1-0',
      d: {
        at_ms: 2000,
        authorization_id: 'auth_1',
        transaction_id: 't1',
        shopper_id: 's1',
        currency: 'USD',
        released_cents: 500,
        cleared_cents: 480,
      },
    } as unknown as WalEvent;
    expect(postingFor(e)?.transfers).toEqual([
      { from: 'card_holds:s1', to: 'program_funding', cents: 500 },
      { from: 'program_funding', to: 'merchant_settlement_payable', cents: 480 },
    ]);
  });
});

describe('KnownAccounts', () => {
  it('remembers accounts and starts over when full', () => {
    const known = new KnownAccounts(2);
    known.addAll(['card_holds:a', 'card_holds:b']);
    expect(known.has('card_holds:a') && known.has('card_holds:b')).toBe(true);
    known.addAll(['card_holds:c']);
    expect(known.has('card_holds:c')).toBe(true);
    expect(known.has('card_holds:a')).toBe(false);
  });
});
