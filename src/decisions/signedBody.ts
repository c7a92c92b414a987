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
