// Money and quantities as integers: cents for money, milli-units for quantities
// (CONTRACT §1 and §3). Wire values are parsed from their decimal text by string
// manipulation, never through a double: `Number("19.99") * 100` is 1998.9999999999998.
//
// All maxima below keep every product we form under 2^53:
//   quantity_milli * unit_price_cents <= 1e7 * 1e7 = 1e14.
// Sums that could pass 2^53 (picked * tax bps for a huge trip) switch to bigint.
import { JsonNumber, type JsonValue } from './json.js';

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

/** 1_000_000.00: the largest swipe (CONTRACT §1). */
export const AMOUNT_CENTS_MAX = 100_000_000;
/** 100_000.00 per unit. */
export const UNIT_PRICE_CENTS_MAX = 10_000_000;
/** 10_000.000 units (or lb, kg...). */
export const QUANTITY_MILLI_MAX = 10_000_000;
/** One priced line; lineCents can exceed it, callers must refuse such a line. */
export const LINE_CENTS_MAX = 100_000_000;

/** Longer text is never a valid amount/quantity; refuse before looking at it. */
const DECIMAL_TEXT_LENGTH_MAX = 24;
/** 15 digits always fit a double exactly (< 2^53); range checks follow. */
const INTEGER_DIGITS_MAX = 15;

function ok<T>(value: T): Parsed<T> {
  return { ok: true, value };
}

function err<T>(message: string): Parsed<T> {
  return { ok: false, message };
}

/** The text of a JSON number or string; null for anything else. */
function decimalText(v: JsonValue | undefined): string | null {
  if (v instanceof JsonNumber) return v.raw;
  if (typeof v === 'string') return v;
  return null;
}

function allAsciiDigits(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

/**
 * Splits plain unsigned decimal text "123" / "123.45" into integer and fraction digits.
 * Refuses signs, exponents, whitespace, leading zeros ("007"), "1." and ".5", hex,
 * non-ASCII digits. Returns a reason (without the field name) on failure.
 */
function splitDecimal(text: string): { int: string; frac: string } | string {
  if (text.length === 0) return 'must not be empty';
  if (text.length > DECIMAL_TEXT_LENGTH_MAX) return 'is too long';
  const dot = text.indexOf('.');
  const int = dot < 0 ? text : text.slice(0, dot);
  const frac = dot < 0 ? '' : text.slice(dot + 1);
  if (!allAsciiDigits(int) || (dot >= 0 && !allAsciiDigits(frac))) {
    return 'must be a plain decimal like 12.34 (no sign, exponent or spaces)';
  }
  if (int.length > 1 && int.charCodeAt(0) === 0x30) return 'must not have leading zeros';
  return { int, frac };
}

/**
 * Parses an unsigned decimal with at most `scaleDigits` fraction digits into an integer
 * in units of 10^-scaleDigits, checked against [min, max]. Messages start with `field`.
 */
function parseScaled(
  v: JsonValue | undefined,
  field: string,
  scaleDigits: number,
  min: number,
  max: number,
): Parsed<number> {
  const text = decimalText(v);
  if (text === null) return err(`${field} must be a number or a decimal string`);
  const tooSmall = min > 0 ? `${field} must be greater than 0` : `${field} must not be negative`;
  if (text.charCodeAt(0) === 0x2d) return err(tooSmall);
  const tooLarge = `${field} must be at most ${formatScaled(max, scaleDigits)}`;
  const parts = splitDecimal(text);
  if (typeof parts === 'string') return err(`${field} ${parts}`);
  if (parts.frac.length > scaleDigits) {
    return err(`${field} must have at most ${scaleDigits} decimal places`);
  }
  if (parts.int.length > INTEGER_DIGITS_MAX - scaleDigits) return err(tooLarge);
  const scaled = Number(parts.int + parts.frac.padEnd(scaleDigits, '0'));
  if (scaled < min) return err(tooSmall);
  if (scaled > max) return err(tooLarge);
  return ok(scaled);
}

/** Swipe/reversal amount: 0 < amount <= 1_000_000.00, at most 2 decimals, in cents. */
export function parseAmountCents(v: JsonValue | undefined, field: string): Parsed<number> {
  return parseScaled(v, field, 2, 1, AMOUNT_CENTS_MAX);
}

/** Unit price: 0 <= price <= 100_000.00, at most 2 decimals, in cents. */
export function parseUnitPriceCents(v: JsonValue | undefined, field: string): Parsed<number> {
  return parseScaled(v, field, 2, 0, UNIT_PRICE_CENTS_MAX);
}

/** Count or weight: 0 < quantity <= 10_000.000, at most 3 decimals, in thousandths. */
export function parseQuantityMilli(v: JsonValue | undefined, field: string): Parsed<number> {
  return parseScaled(v, field, 3, 1, QUANTITY_MILLI_MAX);
}

/** A JSON number written as an integer ("925", "-3"; not "925.0", "1e3", "\"925\""). */
export function parseIntegerInRange(
  v: JsonValue | undefined,
  field: string,
  min: number,
  max: number,
): Parsed<number> {
  assert(Number.isSafeInteger(min) && Number.isSafeInteger(max) && min <= max, 'bad integer range');
  if (!(v instanceof JsonNumber)) return err(`${field} must be an integer`);
  const raw = v.raw;
  const negative = raw.charCodeAt(0) === 0x2d;
  const digits = negative ? raw.slice(1) : raw;
  if (!allAsciiDigits(digits) || (digits.length > 1 && digits.charCodeAt(0) === 0x30)) {
    return err(`${field} must be an integer`);
  }
  const range = `${field} must be between ${min} and ${max}`;
  if (digits.length > INTEGER_DIGITS_MAX) return err(range);
  const magnitude = Number(digits);
  const value = negative && magnitude !== 0 ? -magnitude : magnitude;
  if (value < min || value > max) return err(range);
  return ok(value);
}

/** round_half_up(quantity_milli * unit_price_cents / 1000), exact. May exceed LINE_CENTS_MAX. */
export function lineCents(quantityMilli: number, unitPriceCents: number): number {
  assert(Number.isSafeInteger(quantityMilli), 'quantityMilli must be a safe integer');
  assert(quantityMilli >= 0 && quantityMilli <= QUANTITY_MILLI_MAX, 'quantityMilli out of range');
  assert(Number.isSafeInteger(unitPriceCents), 'unitPriceCents must be a safe integer');
  assert(unitPriceCents >= 0 && unitPriceCents <= UNIT_PRICE_CENTS_MAX, 'unitPriceCents out of range');
  const product = quantityMilli * unitPriceCents; // <= 1e14, exact
  const remainder = product % 1000;
  const whole = (product - remainder) / 1000; // exact: divisible
  return remainder >= 500 ? whole + 1 : whole;
}

/** ceil(a / b) for non-negative safe integers a and positive b, exact. */
export function ceilDiv(a: number, b: number): number {
  assert(Number.isSafeInteger(a) && a >= 0, 'ceilDiv: a must be a non-negative safe integer');
  assert(Number.isSafeInteger(b) && b > 0, 'ceilDiv: b must be a positive safe integer');
  const remainder = a % b;
  const whole = (a - remainder) / b;
  return remainder === 0 ? whole : whole + 1;
}

/** ceil(a * bps / 10000); bigint only when the product would pass 2^53. */
function ceilBps(a: number, bps: number): number {
  const product = a * bps;
  if (Number.isSafeInteger(product)) return ceilDiv(product, 10_000);
  const big = BigInt(a) * BigInt(bps);
  const result = (big + 9_999n) / 10_000n;
  assert(result <= BigInt(Number.MAX_SAFE_INTEGER), 'ceilBps overflow');
  return Number(result);
}

export interface AllowanceTerms {
  pickedCents: number;
  taxRateBps: number;
  toleranceBps: number;
  toleranceCents: number;
  /** null: no hold cap. */
  holdCents: number | null;
}

/**
 * CONTRACT §3:
 *   taxed   = picked + ceil(picked * tax_rate_bps / 10000)
 *   slack   = max(tolerance_cents, ceil(taxed * tolerance_bps / 10000))
 *   ceiling = min(taxed + slack, hold_cents)   (no hold: taxed + slack)
 */
export function ceilingCents(t: AllowanceTerms): number {
  assertCents(t.pickedCents, 'pickedCents');
  assertCents(t.taxRateBps, 'taxRateBps');
  assertCents(t.toleranceBps, 'toleranceBps');
  assertCents(t.toleranceCents, 'toleranceCents');
  if (t.holdCents !== null) assertCents(t.holdCents, 'holdCents');
  const taxed = t.pickedCents + ceilBps(t.pickedCents, t.taxRateBps);
  const slack = Math.max(t.toleranceCents, ceilBps(taxed, t.toleranceBps));
  const ceiling = taxed + slack;
  assert(Number.isSafeInteger(ceiling), 'ceiling overflow');
  return t.holdCents === null ? ceiling : Math.min(ceiling, t.holdCents);
}

/** 12345 -> "123.45", -5 -> "-0.05". */
export function formatCents(cents: number): string {
  assert(Number.isSafeInteger(cents), 'formatCents: cents must be a safe integer');
  return formatScaled(cents, 2);
}

function formatScaled(value: number, scaleDigits: number): string {
  const sign = value < 0 ? '-' : '';
  const digits = String(Math.abs(value)).padStart(scaleDigits + 1, '0');
  const cut = digits.length - scaleDigits;
  return `${sign}${digits.slice(0, cut)}.${digits.slice(cut)}`;
}

function assertCents(v: number, name: string): void {
  assert(Number.isSafeInteger(v) && v >= 0, `${name} must be a non-negative safe integer`);
}

/** Programmer errors: crash loudly, never turn into a decline. */
function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}
