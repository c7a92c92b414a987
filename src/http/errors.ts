// One catalogue of error responses: a stable code, its HTTP status and a
// default message. Every body is {"error": code, "message": text} (CONTRACT §1:
// every error body on every route has both); callers add a precise message
// where they know more.

export const ERRORS = {
  invalid_request: [400, 'the request is malformed'],
  invalid_signature: [401, 'missing or invalid signature'],
  unauthorized: [401, 'missing or invalid bearer token'],
  not_found: [404, 'no such route'],
  trip_not_found: [404, 'no such trip for this shopper'],
  item_not_found: [404, 'no such item on this trip'],
  authorization_not_found: [404, 'no such authorization for this shopper'],
  method_not_allowed: [405, 'method not allowed on this route'],
  trip_conflict: [409, 'a trip with this id exists with a different body'],
  card_conflict: [409, 'the card belongs to another shopper'],
  open_trip_exists: [409, 'the shopper has another open trip'],
  trip_closed: [409, 'the trip is closed'],
  trip_expired: [409, 'the trip expired'],
  amount_exceeds_held: [409, 'amount is above what the authorization still holds'],
  reversal_conflict: [409, 'this reversal id was used with a different request'],
  amount_exceeds_allowance: [409, 'amount is above the allowance'],
  clearing_conflict: [409, 'this transaction was already cleared with a different amount'],
  authorization_not_approved: [409, 'the authorization was not approved'],
  currency_mismatch: [409, 'currency differs from the authorization'],
  request_timeout: [408, 'the request body did not arrive in time'],
  payload_too_large: [413, 'body too large'],
  unsupported_media_type: [415, 'Content-Type must be application/json'],
  overpick_requires_approval: [422, 'picked quantity is above the ordered quantity by more than allowed'],
  price_variance_requires_approval: [422, 'unit price is above the estimate by more than allowed'],
  overpick_above_maximum: [
    422,
    'picked quantity or value is above the maximum allowed even with customer approval',
  ],
  internal_error: [500, 'internal error'],
  not_ready: [503, 'not ready'],
  overloaded: [503, 'this pod is overloaded; retry on another pod'],
  storage_unavailable: [503, 'storage is unavailable, retry later'],
} as const satisfies Record<string, readonly [number, string]>;

export type ErrorCode = keyof typeof ERRORS;

export interface HttpResponse {
  readonly status: number;
  readonly body: string;
  readonly replayed?: boolean;
  /** Extra response headers (a processor's own, e.g. Stripe-Version). */
  readonly headers?: ReadonlyArray<readonly [string, string]>;
  /** This answer says the shopper or card is not here (src/regions/directory.ts key): the region seam looks for its home. */
  readonly notHere?: string;
}

export function errorResponse(code: ErrorCode, message?: string): HttpResponse {
  const [status, fallback] = ERRORS[code];
  return { status, body: JSON.stringify({ error: code, message: message ?? fallback }) };
}

/** An error body with extra fields after `error` and `message` (e.g. /readyz state). */
export function errorWith(code: ErrorCode, extra: Record<string, unknown>, message?: string): HttpResponse {
  const [status, fallback] = ERRORS[code];
  return { status, body: JSON.stringify({ error: code, message: message ?? fallback, ...extra }) };
}

export function jsonResponse(status: number, value: unknown): HttpResponse {
  return { status, body: JSON.stringify(value) };
}

const STATUS_TEXT: Record<number, string> = {
  200: '200 OK',
  201: '201 Created',
  204: '204 No Content',
  400: '400 Bad Request',
  401: '401 Unauthorized',
  402: '402 Payment Required',
  404: '404 Not Found',
  405: '405 Method Not Allowed',
  409: '409 Conflict',
  413: '413 Payload Too Large',
  415: '415 Unsupported Media Type',
  422: '422 Unprocessable Entity',
  500: '500 Internal Server Error',
  503: '503 Service Unavailable',
};

export function statusLine(status: number): string {
  return STATUS_TEXT[status] ?? `${status} Status`;
}
