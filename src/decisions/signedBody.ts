// The first steps of every processor-signed route (authorizations, reversals,
// clearings): verify the signature on the raw bytes, then decode strict UTF-8
// and parse exact JSON. Returns the parsed body, or the error response to send.
import { type SignatureCheck, verifySignature } from '../auth/signature.js';
import type { Config } from '../config/config.js';
import { parseOptionalKey, parseShopperId } from '../domain/fields.js';
import { isObject, type JsonValue } from '../domain/json.js';
import { readJsonBody } from '../http/jsonBody.js';
import { errorResponse, type HttpResponse } from '../http/errors.js';
import type { Request } from '../http/server.js';
import type { RedisClient } from '../redis/client.js';
import type { Keys } from '../redis/keys.js';
import type { ScriptRunner } from '../redis/scripts.js';

export type SignedBody =
  | { readonly ok: true; readonly signature: Extract<SignatureCheck, { ok: true }>; readonly body: JsonValue }
  | { readonly ok: false; readonly response: HttpResponse };

export function readSignedBody(req: Request, config: Config, nowMs: number): SignedBody {
  const signature = verifySignature(
    req.headers.signature === '' ? undefined : req.headers.signature,
    req.body,
    config.signatureSecrets,
    Math.floor(nowMs / 1000),
    config.signatureToleranceS,
  );
  if (!signature.ok) return { ok: false, response: errorResponse('invalid_signature') };
  const json = readJsonBody(req.body);
  if (!json.ok) return json;
  return { ok: true, signature, body: json.json };
}

/** CONTRACT §1: the message of a signature replayed on another processor endpoint. */
export const SIGNATURE_ELSEWHERE_MESSAGE = 'signature already used on another endpoint';

/**
 * One endpoint per signature (CONTRACT §1): claims the signature key
 * (`<base>sig:<v1>`, shared with lua/authorizeSwipe-4.lua) for `endpoint`
 * for signature_ttl_s, atomically (SET NX GET). True when the signature is
 * new or was claimed by this same endpoint before (a replay, answered by the
 * endpoint's own idempotency); false when another endpoint used it first,
 * including /v1/authorizations, whose script stores its authorization id there.
 */
export async function claimSignature(
  client: RedisClient,
  key: string,
  endpoint: 'reversals' | 'clearings',
  ttlS: number,
): Promise<boolean> {
  const mine = `ep:${endpoint}`;
  const previous = await client.call('SET', key, mine, 'EX', ttlS, 'NX', 'GET');
  return previous === null || previous === mine;
}

/** Reversals and clearings name an authorization by transaction id and shopper (CONTRACT §2). */
export type AuthorizationRef =
  | {
      readonly ok: true;
      readonly body: Record<string, JsonValue>;
      readonly txn: string;
      readonly shopperId: string;
    }
  | { readonly ok: false; readonly response: HttpResponse };

export function readAuthorizationRef(body: JsonValue): AuthorizationRef {
  if (!isObject(body))
    return { ok: false, response: errorResponse('invalid_request', 'body must be a JSON object') };
  const txn = parseOptionalKey(body['transaction_id'], 'transaction_id');
  if (!txn.ok) return { ok: false, response: errorResponse('invalid_request', txn.message) };
  if (txn.value === undefined) {
    return { ok: false, response: errorResponse('invalid_request', 'transaction_id is required') };
  }
  const shopper = parseShopperId(body['shopper_id']);
  if (!shopper.ok) return { ok: false, response: errorResponse('invalid_request', shopper.message) };
  return { ok: true, body, txn: txn.value, shopperId: shopper.value };
}

/** A signed reversal or clearing: its signature, and the authorization it names. */
export type SignedAuthorizationRef =
  | (Extract<AuthorizationRef, { ok: true }> & { readonly signatureId: string })
  | { readonly ok: false; readonly response: HttpResponse };

/** The shared first steps of /reversals and /clearings: signature, JSON, transaction and shopper. */
export function readSignedAuthorizationRef(
  req: Request,
  config: Config,
  nowMs: number,
): SignedAuthorizationRef {
  const signed = readSignedBody(req, config, nowMs);
  if (!signed.ok) return signed;
  const ref = readAuthorizationRef(signed.body);
  if (!ref.ok) return ref;
  return { ...ref, signatureId: signed.signature.id };
}

/**
 * Claims the request's signature for `endpoint` in the shopper's partition (claimSignature);
 * the 401 of CONTRACT §1 when another endpoint used it first, else undefined.
 */
export async function refuseSignatureUsedElsewhere(
  deps: SignedRefDeps,
  ref: SignedRef,
  endpoint: 'reversals' | 'clearings',
): Promise<HttpResponse | undefined> {
  const { keys } = deps;
  const key = keys.sig(keys.partition(ref.shopperId), ref.signatureId);
  if (await claimSignature(deps.scripts.client, key, endpoint, 2 * deps.config.signatureToleranceS))
    return undefined;
  return errorResponse('invalid_signature', SIGNATURE_ELSEWHERE_MESSAGE);
}

/** What /reversals and /clearings need: config, Redis, and a clock tests can set. */
export interface SignedRefDeps {
  readonly config: Config;
  readonly keys: Keys;
  readonly scripts: ScriptRunner;
  readonly now?: () => number;
}

/** A signed reference that passed readSignedAuthorizationRef. */
export type SignedRef = Extract<SignedAuthorizationRef, { ok: true }>;

/** The handler of /reversals or /clearings: `handle` gets the signed reference and the request's time. */
export function signedAuthorizationRefHandler(
  deps: SignedRefDeps,
  handle: (ref: SignedRef, nowMs: number) => Promise<HttpResponse>,
): (req: Request) => Promise<HttpResponse> {
  const now = deps.now ?? Date.now;
  return async (req) => {
    // One clock reading per request: the signature window and the recorded time agree.
    const nowMs = now();
    const ref = readSignedAuthorizationRef(req, deps.config, nowMs);
    if (!ref.ok) return ref.response;
    return handle(ref, nowMs);
  };
}
