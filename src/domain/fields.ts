// Field validators shared by the webhook and trip API. Each returns the clean
// value or a message that names the field (the 400 body says which field).
import { isObject, JsonNumber, type JsonValue } from './json.js';
import type { Parsed } from './money.js';

export const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/** Processor ids and idempotency keys: printable ASCII, no spaces. */
export const OPAQUE_KEY_PATTERN = /^[\x21-\x7e]{1,128}$/;

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const fail = (message: string): Parsed<never> => ({ ok: false, message });

/** shopper_id: a non-negative integer or a string of [A-Za-z0-9_-], at most 64 chars. */
export function parseShopperId(v: JsonValue | undefined, field = 'shopper_id'): Parsed<string> {
  if (v === undefined || v === null) return fail(`${field} is required`);
  if (v instanceof JsonNumber) {
    if (!/^(0|[1-9]\d{0,15})$/.test(v.raw) || !Number.isSafeInteger(Number(v.raw))) {
      return fail(`${field} must be a non-negative integer or an id string`);
    }
    return ok(v.raw);
  }
  if (typeof v !== 'string' || !ID_PATTERN.test(v)) {
    return fail(`${field} must be 1-64 characters of A-Z a-z 0-9 _ -`);
  }
  return ok(v);
}

/** A path parameter id (raw, not decoded: percent-escapes fail the pattern). */
export function parsePathId(v: string, field: string): Parsed<string> {
  return ID_PATTERN.test(v) ? ok(v) : fail(`${field} must be 1-64 characters of A-Z a-z 0-9 _ -`);
}

export function parseOptionalKey(v: JsonValue | undefined, field: string): Parsed<string | undefined> {
  if (v === undefined || v === null) return ok(undefined);
  if (typeof v !== 'string' || !OPAQUE_KEY_PATTERN.test(v)) {
    return fail(`${field} must be 1-128 printable ASCII characters without spaces`);
  }
  return ok(v);
}

export function parseText(v: JsonValue | undefined, field: string, lengthMax: number): Parsed<string> {
  if (v === undefined || v === null) return fail(`${field} is required`);
  if (typeof v !== 'string') return fail(`${field} must be a string`);
  if (v.trim().length === 0) return fail(`${field} must not be empty`);
  if (v.length > lengthMax) return fail(`${field} must be at most ${lengthMax} characters`);
  return ok(v);
}

export function parseCurrency(v: JsonValue | undefined, field = 'currency'): Parsed<string> {
  if (v === undefined || v === null) return ok('USD');
  if (typeof v !== 'string' || !/^[A-Za-z]{3}$/.test(v)) return fail(`${field} must be an ISO 4217 code`);
  return ok(v.toUpperCase());
}

const COORDINATE = /^-?(0|[1-9]\d{0,2})(\.\d{1,10})?$/;

function parseCoordinate(v: JsonValue | undefined, field: string, limit: number): Parsed<string> {
  const raw = v instanceof JsonNumber ? v.raw : typeof v === 'string' ? v : undefined;
  if (raw === undefined || !COORDINATE.test(raw)) return fail(`${field} must be a decimal number`);
  const n = Number(raw);
  if (n < -limit || n > limit) return fail(`${field} must be between ${-limit} and ${limit}`);
  return ok(raw);
}

export interface Location {
  readonly lat: string;
  readonly lng: string;
}

/** Optional {lat, lng}; kept as decimal strings (distances are computed in Redis). */
export function parseLocation(v: JsonValue | undefined, field: string): Parsed<Location | undefined> {
  if (v === undefined || v === null) return ok(undefined);
  if (!isObject(v)) return fail(`${field} must be an object with lat and lng`);
  const lat = parseCoordinate(v['lat'], `${field}.lat`, 90);
  if (!lat.ok) return lat;
  const lng = parseCoordinate(v['lng'], `${field}.lng`, 180);
  if (!lng.ok) return lng;
  return ok({ lat: lat.value, lng: lng.value });
}

export function parseOptionalBool(v: JsonValue | undefined, field: string): Parsed<boolean> {
  if (v === undefined || v === null) return ok(false);
  if (typeof v !== 'boolean') return fail(`${field} must be true or false`);
  return ok(v);
}
