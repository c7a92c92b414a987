// One catalogue of error responses: a stable code, its HTTP status. Bodies are
// always {"error": code} plus a "message" where it helps the caller.

export const ERRORS = {
  invalid_request: 400,
  invalid_signature: 401,
  unauthorized: 401,
  not_found: 404,
  trip_not_found: 404,
  item_not_found: 404,
  authorization_not_found: 404,
  method_not_allowed: 405,
  trip_conflict: 409,
  card_conflict: 409,
  open_trip_exists: 409,
  trip_closed: 409,
  trip_expired: 409,
  amount_exceeds_held: 409,
  reversal_conflict: 409,
  amount_exceeds_allowance: 409,
  clearing_conflict: 409,
  authorization_not_approved: 409,
  currency_mismatch: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  overpick_requires_approval: 422,
  price_variance_requires_approval: 422,
  internal_error: 500,
  storage_unavailable: 503,
} as const;

export type ErrorCode = keyof typeof ERRORS;

export interface HttpResponse {
  readonly status: number;
  readonly body: string;
  readonly replayed?: boolean;
  /** Extra response headers (a processor's own, e.g. Stripe-Version). */
  readonly headers?: ReadonlyArray<readonly [string, string]>;
}

export function errorResponse(code: ErrorCode, message?: string): HttpResponse {
  const body = message === undefined ? { error: code } : { error: code, message };
  return { status: ERRORS[code], body: JSON.stringify(body) };
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
