// Request bodies: strict UTF-8, then the exact JSON parser (numbers kept as
// their literal text). One place for both the processor and trip routes.
import { decodeUtf8Strict, type JsonValue, parseJson } from '../domain/json.js';
import { errorResponse, type HttpResponse } from './errors.js';

export type JsonBody =
  | { readonly ok: true; readonly json: JsonValue }
  | { readonly ok: false; readonly response: HttpResponse };

export function readJsonBody(bytes: Uint8Array): JsonBody {
  const text = decodeUtf8Strict(bytes);
  if (text === null)
    return { ok: false, response: errorResponse('invalid_request', 'body is not valid UTF-8') };
  const json = parseJson(text);
  if (!json.ok)
    return { ok: false, response: errorResponse('invalid_request', `malformed JSON: ${json.message}`) };
  return { ok: true, json: json.value };
}
