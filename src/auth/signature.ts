// Processor webhook signature (CONTRACT §1):
//   X-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]
//   v1 = hex(HMAC_SHA256(secret, "<t>.<raw body bytes>"))
// Several v1 entries (the processor rotating its secret) and several of our secrets
// (us rotating) are accepted; one match is enough. The header is parsed defensively
// and bounded: it is attacker-controlled and checked before anything else.
import { HmacSha256, hexEqual, sha256Hex } from './sha256.js';

/**
 * `id`: the signature's identity, sha256(`<t>.<raw body>`) in hex: the same for every valid v1
 * entry of the request (one per secret during a rotation), so dropping or reordering entries
 * cannot make a used signature new again (one endpoint per signature, CONTRACT §1).
 */
export type SignatureCheck = { ok: true; t: number; id: string } | { ok: false };

/** Longer headers are refused before parsing. */
export const SIGNATURE_HEADER_LENGTH_MAX = 2048;
/** More v1 entries than this: refused (bounds the HMAC compare work). */
export const SIGNATURE_V1_ENTRIES_MAX = 8;
/** Parts of any kind (unknown schemes like v0 are skipped, as Stripe does). */
const SIGNATURE_PARTS_MAX = 16;
/** Unix seconds: up to 12 digits, no sign, no leading zero. */
const TIMESTAMP_DIGITS_MAX = 12;
const HEX_SHA256_LENGTH = 64;

const FAIL: SignatureCheck = Object.freeze({ ok: false });

interface ParsedHeader {
  t: number;
  v1: string[];
}

function isPlainTimestamp(s: string): boolean {
  if (s.length === 0 || s.length > TIMESTAMP_DIGITS_MAX || s.charCodeAt(0) === 0x30) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

function isHex(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i) | 0x20; // fold A-F onto a-f
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
  }
  return true;
}

/** null: malformed (no t, duplicate t, part without "=", too many parts/entries). */
function parseHeader(header: string): ParsedHeader | null {
  const parts = header.split(',');
  if (parts.length > SIGNATURE_PARTS_MAX) return null;
  let t: number | null = null;
  const v1: string[] = [];
  for (const rawPart of parts) {
    const part = rawPart.trim();
    if (part.length === 0) continue; // "t=1,,v1=..": tolerated
    const eq = part.indexOf('=');
    if (eq <= 0) return null;
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 't') {
      if (t !== null || !isPlainTimestamp(value)) return null; // duplicate t: ambiguous, refuse
      t = Number(value);
    } else if (key === 'v1') {
      if (v1.length === SIGNATURE_V1_ENTRIES_MAX) return null;
      // Wrong length or not hex cannot match: skip it, another entry may.
      if (value.length === HEX_SHA256_LENGTH && isHex(value)) v1.push(value.toLowerCase());
    }
  }
  if (t === null) return null;
  return { t, v1 };
}

/** Padded keys per secret; the secrets are the few in config (and tests'), so this stays small. */
const hmacs = new Map<string, HmacSha256>();
const HMAC_KEYS_CACHED_MAX = 64;

function hmacHex(secret: string, t: number, rawBody: Uint8Array | string): string {
  let h = hmacs.get(secret);
  if (h === undefined) {
    h = new HmacSha256(secret);
    if (hmacs.size < HMAC_KEYS_CACHED_MAX) hmacs.set(secret, h);
  }
  return h.hex(`${t}.`, rawBody);
}

/**
 * The checks that need no HMAC: the header is well formed, has a v1 entry that
 * could match and a `t` within tolerance. A request failing this is refused
 * before its body is read or hashed (a flood of forged requests costs little).
 */
export function signaturePlausible(header: string, nowS: number, toleranceS: number): boolean {
  if (header.length === 0 || header.length > SIGNATURE_HEADER_LENGTH_MAX) return false;
  const parsed = parseHeader(header);
  return parsed !== null && parsed.v1.length > 0 && Math.abs(nowS - parsed.t) <= toleranceS;
}

export function verifySignature(
  header: string | undefined,
  rawBody: Uint8Array,
  secrets: readonly string[],
  nowS: number,
  toleranceS: number,
): SignatureCheck {
  if (!Number.isFinite(nowS) || !Number.isFinite(toleranceS) || toleranceS < 0) {
    throw new Error('verifySignature: nowS and toleranceS must be finite, toleranceS >= 0');
  }
  if (header === undefined || header.length > SIGNATURE_HEADER_LENGTH_MAX) return FAIL;
  const parsed = parseHeader(header);
  if (parsed === null || parsed.v1.length === 0) return FAIL;
  if (Math.abs(nowS - parsed.t) > toleranceS) return FAIL;
  let match = false;
  // No early exit: the work done does not depend on which secret/entry matched. Entries are
  // 64 lowercase hex digits (parseHeader), as the expected value is.
  for (const secret of secrets) {
    if (secret.length === 0) continue;
    const expected = hmacHex(secret, parsed.t, rawBody);
    for (const candidate of parsed.v1) {
      if (hexEqual(candidate, expected)) match = true;
    }
  }
  return !match ? FAIL : { ok: true, t: parsed.t, id: sha256Hex(signedBytes(parsed.t, rawBody)) };
}

/** "t=<t>,v1=<hex>" for tests, curl examples, bench and k6. */
export function signatureHeader(secret: string, t: number, rawBody: Uint8Array | string): string {
  if (!Number.isSafeInteger(t) || t <= 0) throw new Error('signatureHeader: t must be a positive integer');
  return `t=${t},v1=${hmacHex(secret, t, rawBody)}`;
}

/** `<t>.` followed by the raw body, as the HMAC covers them. */
function signedBytes(t: number, rawBody: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(`${t}.`), rawBody]);
}
