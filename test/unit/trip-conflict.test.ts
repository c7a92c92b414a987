// The 409 of a trip PUT names what differs from the stored body, and never fails on a stored
// body of an unexpected shape (then it says only that the bodies differ).
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { parseJson } from '../../src/domain/json.js';
import { canonicalSpec, conflictMessage, parseTripSpec, type TripSpec } from '../../src/trips/tripRequest.js';

const config = loadConfig({ NODE_ENV: 'test' });

function spec(body: Record<string, unknown>): TripSpec {
  const json = parseJson(JSON.stringify(body));
  if (!json.ok) throw new Error(json.message);
  const s = parseTripSpec(json.value, config);
  if (!s.ok) throw new Error(s.message);
  return s.value;
}

const base = {
  merchant: { name: 'Safeway', address: '123 Main St' },
  orders: [{ order_id: 'o-1', items: [{ item_id: 'milk', quantity: 10, unit_price: '3.49' }] }],
};

describe('conflictMessage', () => {
  it('names the fields, the merchant fields and the orders that differ', () => {
    const stored = canonicalSpec(spec(base)).json;
    const changed = spec({
      ...base,
      merchant: { name: 'Safeway', address: '125 Main St' },
      tax_rate_bps: 100,
      orders: [{ order_id: 'o-2', items: [{ item_id: 'eggs', quantity: 1, unit_price: '1.00' }] }],
    });
    expect(conflictMessage('s1', 't1', stored, changed)).toBe(
      'trip t1 of shopper s1 exists with a different body: merchant.address, tax_rate_bps, estimated_cents, orders[o-2], orders[o-1] differ',
    );
  });

  it('says only that the bodies differ when the stored body is missing or of another shape', () => {
    const s = spec(base);
    for (const stored of ['', 'null', '[]', '"x"', '{"orders": [null, 3], "merchant": null}', '{not json']) {
      expect(conflictMessage('s1', 't1', stored, s)).toMatch(
        /^trip t1 of shopper s1 exists with a different body/,
      );
    }
    expect(conflictMessage('s1', 't1', 'null', s)).toBe('trip t1 of shopper s1 exists with a different body');
  });

  it('names at most 8 differences', () => {
    const many = spec({
      ...base,
      orders: Array.from({ length: 20 }, (_, i) => ({
        order_id: `o-${i}`,
        items: [{ item_id: `i${i}`, quantity: 1, unit_price: '1.00' }],
      })),
    });
    const message = conflictMessage('s1', 't1', canonicalSpec(spec(base)).json, many);
    expect(message.split(', ').length).toBe(8);
  });
});
