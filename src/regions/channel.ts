// The authenticated inter-region channel (CONTRACT §8): a forwarded request
// carries an HMAC-SHA256 over method, path, timestamp, origin region and body,
// keyed by the first REGION_SECRETS entry; the receiver accepts any entry
// (rotation) within a clock tolerance. The origin header doubles as the loop
// guard: a request that arrived over the channel is never forwarded again.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { uuidv7HexFrom } from '../domain/ids.js';

export const REGION_SIGNATURE_HEADER = 'x-region-signature';
export const REGION_ORIGIN_HEADER = 'x-region-origin';
export const REGION_TIMESTAMP_HEADER = 'x-region-timestamp';
/** How far a forwarded request's timestamp may be from the receiver's clock. */
export const REGION_CLOCK_TOLERANCE_S = 30;

export interface ChannelRequest {
  readonly method: string;
  readonly path: string;
  readonly body: Buffer;
}

export type ChannelVerdict =
  | { readonly ok: true; readonly origin: string }
  | { readonly ok: false; readonly code: 'UNSIGNED' | 'STALE' | 'BAD_SIGNATURE' };

function mac(secret: string, req: ChannelRequest, timestampS: number, origin: string): Buffer {
  const h = createHmac('sha256', secret);
  h.update(`${req.method.toUpperCase()}\n${req.path}\n${timestampS}\n${origin}\n`);
  h.update(req.body);
  return h.digest();
}

/** Headers that authenticate `req` as sent by region `origin` (secrets[0] signs). */
export function signForward(
  secrets: readonly string[],
  origin: string,
  req: ChannelRequest,
  nowS: number,
): Record<string, string> {
  const secret = secrets[0];
  if (secret === undefined) throw new Error('signForward needs at least one REGION_SECRETS entry');
  return {
    [REGION_ORIGIN_HEADER]: origin,
    [REGION_TIMESTAMP_HEADER]: String(nowS),
    [REGION_SIGNATURE_HEADER]: mac(secret, req, nowS, origin).toString('hex'),
  };
}

/** Checks the channel headers of a received request; any secret in `secrets` is accepted. */
export function verifyForward(
  secrets: readonly string[],
  headers: Readonly<Record<string, string | undefined>>,
  req: ChannelRequest,
  nowS: number,
): ChannelVerdict {
  const origin = headers[REGION_ORIGIN_HEADER];
  const ts = headers[REGION_TIMESTAMP_HEADER];
  const sig = headers[REGION_SIGNATURE_HEADER];
  if (origin === undefined || ts === undefined || sig === undefined) return { ok: false, code: 'UNSIGNED' };
  if (!/^\d{1,12}$/.test(ts) || Math.abs(nowS - Number(ts)) > REGION_CLOCK_TOLERANCE_S)
    return { ok: false, code: 'STALE' };
  if (!/^[0-9a-f]{64}$/.test(sig)) return { ok: false, code: 'BAD_SIGNATURE' };
  const given = Buffer.from(sig, 'hex');
  for (const secret of secrets)
    if (timingSafeEqual(given, mac(secret, req, Number(ts), origin))) return { ok: true, origin };
  return { ok: false, code: 'BAD_SIGNATURE' };
}

/**
 * The authorization id of a forwarded swipe (docs/regions.md, "A home that decided a forwarded
 * swipe ..."): derived from the forward's verified channel signature and timestamp, which only
 * the two regions know. The home decides the swipe under it, and the region that forwarded it
 * gives its fail-open answer under it when the home's answer misses the deadline, so the replay
 * of that answer into the home finds its own decision (lua/replayFailOpen-4.lua: `overridden`
 * or `already_decided`, counted once). No header carries it: a request from outside cannot
 * choose it, and it needs no trust in a peer beyond the channel's. The layout of minted ids
 * (`auth_` + UUIDv7 hex), the forward's second as its time.
 */
export function forwardedAuthorizationId(
  signatureHex: string,
  timestampS: number,
  idempotencyKeyHeader: string,
): string {
  const bits = createHash('sha256')
    .update('swipe-authorizer forwarded authorization id\n')
    .update(`${signatureHex}\n`)
    .update(idempotencyKeyHeader);
  return `auth_${uuidv7HexFrom(timestampS * 1000, bits.digest())}`;
}

/** Loop guard: a request that came over the channel is answered here, never forwarded again. */
export function mayForward(headers: Readonly<Record<string, string | undefined>>): boolean {
  return headers[REGION_ORIGIN_HEADER] === undefined;
}
