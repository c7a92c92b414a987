import { describe, expect, it } from 'vitest';
import { JsonNumber, type JsonValue, parseJson } from '../../src/domain/json.js';
import {
  AMOUNT_CENTS_MAX,
  ceilDiv,
  ceilingCents,
  formatCents,
  LINE_CENTS_MAX,
  lineCents,
  type Parsed,
  parseAmountCents,
  parseIntegerInRange,
  parseQuantityMilli,
  parseUnitPriceCents,
  QUANTITY_MILLI_MAX,
  UNIT_PRICE_CENTS_MAX,
} from '../../src/domain/money.js';

const n = (raw: string) => new JsonNumber(raw);

/** The value as it arrives from the wire: the amount field of a parsed body. */
function wire(json: string): JsonValue {
  const r = parseJson(`{"amount":${json}}`);
  if (!r.ok || r.value === null || typeof r.value !== 'object' || Array.isArray(r.value)) {
    throw new Error(`bad test JSON ${json}`);
  }
  return (r.value as Record<string, JsonValue>)['amount']!;
}

function value(p: Parsed<number>): number {
  if (!p.ok) throw new Error(`expected ok, got: ${p.message}`);
  return p.value;
}

function message(p: Parsed<number>): string {
  if (p.ok) throw new Error(`expected error, got ${p.value}`);
  return p.message;
}

describe('parseAmountCents', () => {
  const good: [string, number][] = [
    ['100', 10_000],
    ['100.0', 10_000],
    ['100.00', 10_000],
    ['100.5', 10_050],
    ['0.01', 1],
    ['0.1', 10],
    ['19.99', 1_999],
    ['1000000', AMOUNT_CENTS_MAX],
    ['1000000.00', AMOUNT_CENTS_MAX],
    ['"100.00"', 10_000],
    ['"0.07"', 7],
    ['"999999.99"', 99_999_999],
  ];
  it.each(good)('%s -> %i cents', (json, cents) => {
    expect(value(parseAmountCents(wire(json), 'amount'))).toBe(cents);
  });

  const bad: [string, string][] = [
    ['0', 'amount must be greater than 0'],
    ['0.00', 'amount must be greater than 0'],
    ['"0"', 'amount must be greater than 0'],
    ['-5', 'amount must be greater than 0'],
    ['"-5.00"', 'amount must be greater than 0'],
    ['-0.0', 'amount must be greater than 0'],
    ['100.001', 'amount must have at most 2 decimal places'],
    ['100.000', 'amount must have at most 2 decimal places'],
    ['19.999999999999999999', 'amount must have at most 2 decimal places'],
    ['"1.999"', 'amount must have at most 2 decimal places'],
    ['1000000.01', 'amount must be at most 1000000.00'],
    ['99999999999999999999', 'amount must be at most 1000000.00'],
    ['"1000001"', 'amount must be at most 1000000.00'],
    ['1e5', 'amount must be a plain decimal like 12.34 (no sign, exponent or spaces)'],
    ['1E2', 'amount must be a plain decimal like 12.34 (no sign, exponent or spaces)'],
    ['"1e2"', 'amount must be a plain decimal like 12.34 (no sign, exponent or spaces)'],
    ['"+5"', 'amount must be a plain decimal like 12.34 (no sign, exponent or spaces)'],
    ['" 5"', 'amount must be a plain decimal like 12.34 (no sign, exponent or spaces)'],
    ['"5 "', 'amount must be a plain decimal like 12.34 (no sign, exponent or spaces)'],
    ['"1."', 'amount must be a plain decimal like 12.34 (no sign, exponent or spaces)'],
    ['".5"', 'amount must be a plain decimal like 12.34 (no sign, exponent or spaces)'],
    ['"0x10"', 'amount must be a plain decimal like 12.34 (no sign, exponent or spaces)'],
    ['"1,00"', 'amount must be a plain decimal like 12.34 (no sign, exponent or spaces)'],
    ['"1.2.3"', 'amount must be a plain decimal like 12.34 (no sign, exponent or spaces)'],
    ['"١٠٠"', 'amount must be a plain decimal like 12.34 (no sign, exponent or spaces)'],
    ['"１００"', 'amount must be a plain decimal like 12.34 (no sign, exponent or spaces)'],
    ['"NaN"', 'amount must be a plain decimal like 12.34 (no sign, exponent or spaces)'],
    ['"Infinity"', 'amount must be a plain decimal like 12.34 (no sign, exponent or spaces)'],
    ['"007"', 'amount must not have leading zeros'],
    ['"00.50"', 'amount must not have leading zeros'],
    ['""', 'amount must not be empty'],
    ['"0.0000000000000000000000001"', 'amount is too long'],
    ['null', 'amount must be a number or a decimal string'],
    ['true', 'amount must be a number or a decimal string'],
    ['[100]', 'amount must be a number or a decimal string'],
    ['{"v":100}', 'amount must be a number or a decimal string'],
  ];
  it.each(bad)('%s -> %s', (json, expected) => {
    expect(message(parseAmountCents(wire(json), 'amount'))).toBe(expected);
  });

  it('refuses a missing field and names the field given', () => {
    expect(message(parseAmountCents(undefined, 'amount'))).toBe(
      'amount must be a number or a decimal string',
    );
    expect(message(parseAmountCents(n('1.234'), 'refund.amount'))).toBe(
      'refund.amount must have at most 2 decimal places',
    );
  });
});

describe('parseUnitPriceCents', () => {
  it('allows 0 and up to 100000.00', () => {
    expect(value(parseUnitPriceCents(n('0'), 'unit_price'))).toBe(0);
    expect(value(parseUnitPriceCents('0.00', 'unit_price'))).toBe(0);
    expect(value(parseUnitPriceCents('3.49', 'unit_price'))).toBe(349);
    expect(value(parseUnitPriceCents(n('2.99'), 'unit_price'))).toBe(299);
    expect(value(parseUnitPriceCents('100000.00', 'unit_price'))).toBe(UNIT_PRICE_CENTS_MAX);
  });

  it('refuses negatives, too large, too precise', () => {
    expect(message(parseUnitPriceCents(n('-1'), 'unit_price'))).toBe('unit_price must not be negative');
    expect(message(parseUnitPriceCents('100000.01', 'unit_price'))).toBe(
      'unit_price must be at most 100000.00',
    );
    expect(message(parseUnitPriceCents('3.499', 'unit_price'))).toBe(
      'unit_price must have at most 2 decimal places',
    );
  });
});

describe('parseQuantityMilli', () => {
  const good: [JsonValue, number][] = [
    [n('10'), 10_000],
    [n('1'), 1_000],
    ['1.500', 1_500],
    [n('1.5'), 1_500],
    ['0.001', 1],
    [n('0.25'), 250],
    ['10000', QUANTITY_MILLI_MAX],
    ['10000.000', QUANTITY_MILLI_MAX],
  ];
  it.each(good)('%j -> %i milli', (v, milli) => {
    expect(value(parseQuantityMilli(v, 'quantity'))).toBe(milli);
  });

  const bad: [JsonValue, string][] = [
    [n('0'), 'quantity must be greater than 0'],
    ['0.000', 'quantity must be greater than 0'],
    [n('-1'), 'quantity must be greater than 0'],
    ['1.0005', 'quantity must have at most 3 decimal places'],
    ['10000.001', 'quantity must be at most 10000.000'],
    [n('1e3'), 'quantity must be a plain decimal like 12.34 (no sign, exponent or spaces)'],
    ['01', 'quantity must not have leading zeros'],
    [true, 'quantity must be a number or a decimal string'],
  ];
  it.each(bad)('%j -> %s', (v, expected) => {
    expect(message(parseQuantityMilli(v, 'quantity'))).toBe(expected);
  });
});

describe('parseIntegerInRange', () => {
  it('accepts integer literals in range', () => {
    expect(value(parseIntegerInRange(n('925'), 'tax_rate_bps', 0, 10_000))).toBe(925);
    expect(value(parseIntegerInRange(n('0'), 'tax_rate_bps', 0, 10_000))).toBe(0);
    expect(value(parseIntegerInRange(n('10000'), 'tax_rate_bps', 0, 10_000))).toBe(10_000);
    expect(value(parseIntegerInRange(n('-3'), 'offset', -5, 5))).toBe(-3);
    expect(Object.is(value(parseIntegerInRange(n('-0'), 'offset', -5, 5)), 0)).toBe(true);
  });

  it('refuses fractions, exponents, strings and out-of-range values', () => {
    const range = 'tax_rate_bps must be between 0 and 10000';
    expect(message(parseIntegerInRange(n('10001'), 'tax_rate_bps', 0, 10_000))).toBe(range);
    expect(message(parseIntegerInRange(n('-1'), 'tax_rate_bps', 0, 10_000))).toBe(range);
    expect(message(parseIntegerInRange(n('1'.repeat(40)), 'tax_rate_bps', 0, 10_000))).toBe(range);
    const integer = 'tax_rate_bps must be an integer';
    expect(message(parseIntegerInRange(n('925.0'), 'tax_rate_bps', 0, 10_000))).toBe(integer);
    expect(message(parseIntegerInRange(n('9e2'), 'tax_rate_bps', 0, 10_000))).toBe(integer);
    expect(message(parseIntegerInRange('925', 'tax_rate_bps', 0, 10_000))).toBe(integer);
    expect(message(parseIntegerInRange(null, 'tax_rate_bps', 0, 10_000))).toBe(integer);
    expect(message(parseIntegerInRange(undefined, 'tax_rate_bps', 0, 10_000))).toBe(integer);
  });

  it('asserts a sane range (programmer error)', () => {
    expect(() => parseIntegerInRange(n('1'), 'x', 5, 1)).toThrow(/bad integer range/);
  });
});

describe('lineCents', () => {
  it('rounds half up with exact integer math', () => {
    expect(lineCents(1_500, 299)).toBe(449); // 1.500 lb x 2.99 = 4.485 -> 4.49
    expect(lineCents(10_000, 349)).toBe(3_490); // 10 x 3.49
    expect(lineCents(1_000, 1)).toBe(1);
    expect(lineCents(500, 1)).toBe(1); // 0.5 cent -> 1 (half up)
    expect(lineCents(499, 1)).toBe(0); // 0.499 cent -> 0
    expect(lineCents(1_234, 567)).toBe(700); // 6.99678 -> 7.00
    expect(lineCents(2_345, 199)).toBe(467); // 4.66655 -> 4.67
    expect(lineCents(1, 0)).toBe(0);
  });

  it('is exact at the maxima (product 1e14)', () => {
    expect(lineCents(QUANTITY_MILLI_MAX, UNIT_PRICE_CENTS_MAX)).toBe(100_000_000_000);
    expect(lineCents(QUANTITY_MILLI_MAX - 1, UNIT_PRICE_CENTS_MAX - 1)).toBe(99_999_980_000);
    // Callers compare against LINE_CENTS_MAX: lineCents itself does not cap.
    expect(lineCents(QUANTITY_MILLI_MAX, UNIT_PRICE_CENTS_MAX) > LINE_CENTS_MAX).toBe(true);
  });

  it('agrees with bigint arithmetic on a sweep of values', () => {
    for (let q = 1; q <= QUANTITY_MILLI_MAX; q = q * 3 + 7) {
      for (let p = 0; p <= UNIT_PRICE_CENTS_MAX; p = p * 5 + 3) {
        const expected = Number((BigInt(q) * BigInt(p) + 500n) / 1000n);
        expect(lineCents(q, p)).toBe(expected);
      }
    }
  });

  it('asserts inputs (programmer errors)', () => {
    expect(() => lineCents(1.5, 100)).toThrow(/assertion failed/);
    expect(() => lineCents(QUANTITY_MILLI_MAX + 1, 100)).toThrow(/assertion failed/);
    expect(() => lineCents(1, -1)).toThrow(/assertion failed/);
    expect(() => lineCents(1, Number.NaN)).toThrow(/assertion failed/);
  });
});

describe('ceilDiv', () => {
  it('is exact', () => {
    expect(ceilDiv(0, 7)).toBe(0);
    expect(ceilDiv(7, 7)).toBe(1);
    expect(ceilDiv(8, 7)).toBe(2);
    expect(ceilDiv(3_643_575, 10_000)).toBe(365);
    expect(ceilDiv(Number.MAX_SAFE_INTEGER, 10_000)).toBe(900_719_925_475);
    expect(ceilDiv(Number.MAX_SAFE_INTEGER, 1)).toBe(Number.MAX_SAFE_INTEGER);
    expect(() => ceilDiv(1, 0)).toThrow(/assertion failed/);
    expect(() => ceilDiv(-1, 3)).toThrow(/assertion failed/);
  });
});

describe('ceilingCents (CONTRACT §3)', () => {
  const terms = { pickedCents: 0, taxRateBps: 0, toleranceBps: 0, toleranceCents: 0, holdCents: null };

  it('worked example: the contract trip (milk 10 x 3.49, apples 1.500 lb x 2.99)', () => {
    const picked = lineCents(10_000, 349) + lineCents(1_500, 299);
    expect(picked).toBe(3_939);
    // taxed = 3939 + ceil(364.3575) = 4304; slack = max(200, ceil(215.2)) = 216
    expect(
      ceilingCents({
        pickedCents: picked,
        taxRateBps: 925,
        toleranceBps: 500,
        toleranceCents: 200,
        holdCents: 15_000,
      }),
    ).toBe(4_520);
  });

  it('tax rounds up', () => {
    expect(ceilingCents({ ...terms, pickedCents: 100, taxRateBps: 925 })).toBe(110); // 9.25 -> 10
    expect(ceilingCents({ ...terms, pickedCents: 10_000, taxRateBps: 925 })).toBe(10_925); // exact
    expect(ceilingCents({ ...terms, pickedCents: 1, taxRateBps: 1 })).toBe(2); // 0.0001 -> 1
  });

  it('slack is the larger of tolerance_cents and tolerance_bps of taxed', () => {
    const base = { ...terms, pickedCents: 10_000, toleranceBps: 500 };
    expect(ceilingCents({ ...base, toleranceCents: 200 })).toBe(10_500); // 500 > 200
    expect(ceilingCents({ ...base, toleranceCents: 1_000 })).toBe(11_000); // 1000 > 500
    expect(ceilingCents({ ...base, pickedCents: 10_001, toleranceCents: 0 })).toBe(10_502); // ceil(500.05)
  });

  it('tolerance applies to the taxed amount', () => {
    // taxed 10925; slack = ceil(546.25) = 547
    expect(
      ceilingCents({
        ...terms,
        pickedCents: 10_000,
        taxRateBps: 925,
        toleranceBps: 500,
        toleranceCents: 200,
      }),
    ).toBe(11_472);
  });

  it('hold caps the ceiling; no hold means no cap', () => {
    const t = { pickedCents: 10_000, taxRateBps: 925, toleranceBps: 500, toleranceCents: 200 };
    expect(ceilingCents({ ...t, holdCents: 11_000 })).toBe(11_000);
    expect(ceilingCents({ ...t, holdCents: 11_472 })).toBe(11_472);
    expect(ceilingCents({ ...t, holdCents: 20_000 })).toBe(11_472);
    expect(ceilingCents({ ...t, holdCents: 0 })).toBe(0);
    expect(ceilingCents({ ...t, holdCents: null })).toBe(11_472);
  });

  it('nothing picked: only tolerance_cents remains', () => {
    expect(ceilingCents({ ...terms, taxRateBps: 925, toleranceBps: 500, toleranceCents: 200 })).toBe(200);
  });

  it('stays exact when picked * bps passes 2^53 (bigint path)', () => {
    const picked = 2 ** 49 + 12_345;
    const taxedBig = BigInt(picked) + (BigInt(picked) * 925n + 9_999n) / 10_000n;
    const slackBig = (taxedBig * 500n + 9_999n) / 10_000n;
    expect(ceilingCents({ ...terms, pickedCents: picked, taxRateBps: 925, toleranceBps: 500 })).toBe(
      Number(taxedBig + slackBig),
    );
  });

  it('asserts non-negative integers (programmer errors)', () => {
    expect(() => ceilingCents({ ...terms, pickedCents: -1 })).toThrow(/assertion failed/);
    expect(() => ceilingCents({ ...terms, taxRateBps: 9.25 })).toThrow(/assertion failed/);
    expect(() => ceilingCents({ ...terms, holdCents: -5 })).toThrow(/assertion failed/);
  });
});

describe('formatCents', () => {
  it('formats integer cents as a decimal string', () => {
    expect(formatCents(12_345)).toBe('123.45');
    expect(formatCents(0)).toBe('0.00');
    expect(formatCents(5)).toBe('0.05');
    expect(formatCents(50)).toBe('0.50');
    expect(formatCents(100)).toBe('1.00');
    expect(formatCents(AMOUNT_CENTS_MAX)).toBe('1000000.00');
    expect(formatCents(-5)).toBe('-0.05');
    expect(formatCents(-12_345)).toBe('-123.45');
    expect(() => formatCents(1.5)).toThrow(/assertion failed/);
  });

  it('round-trips through parseAmountCents', () => {
    for (const cents of [1, 9, 10, 99, 100, 101, 1_999, 123_456, AMOUNT_CENTS_MAX]) {
      expect(value(parseAmountCents(formatCents(cents), 'amount'))).toBe(cents);
    }
  });
});
