// Structured JSON logs (pino). Secrets and signature headers are redacted.
//
// Levels come from config (LOG_LEVEL). On the request path: one debug line per
// decline (with its reason and reason class), one warn line per fail-open
// decision; both helpers check the level first so a disabled level allocates
// nothing. Every request line carries `req_id` (the caller's X-Request-Id when it
// is sane, else a cheap process-unique id).
import { randomBytes } from 'node:crypto';
import { type DestinationStream, type Logger, pino } from 'pino';

export type { Logger };

const CENSOR = '[redacted]';

/** Keys whose values are URLs that may carry a password: only the credentials are removed. */
const URL_KEYS = new Set(['databaseUrl', 'redisUrl', 'DATABASE_URL', 'REDIS_URL']);

export const REDACT_PATHS = [
  // Headers as logged by request/response helpers (uWS gives lower-case names).
  'req.headers.authorization',
  'req.headers["x-signature"]',
  'req.headers["proxy-authorization"]',
  'req.headers.cookie',
  'headers.authorization',
  'headers["x-signature"]',
  'headers["proxy-authorization"]',
  'headers.cookie',
  '*.headers.authorization',
  '*.headers["x-signature"]',
  '*.headers["proxy-authorization"]',
  '*.headers.cookie',
  // Not a bare `authorization` key: in this domain it names a card authorization.
  '["x-signature"]',
  'signature',
  '*.signature',
  // Configuration and anything shaped like it.
  'config.signatureSecrets',
  'config.apiTokens',
  'config.databaseUrl',
  'config.redisUrl',
  'config.redisPassword',
  'redisPassword',
  '*.redisPassword',
  'signatureSecrets',
  'apiTokens',
  'databaseUrl',
  'redisUrl',
  '*.signatureSecrets',
  '*.apiTokens',
  '*.databaseUrl',
  '*.redisUrl',
  'secret',
  'secrets',
  'token',
  'tokens',
  'password',
  '*.secret',
  '*.secrets',
  '*.token',
  '*.tokens',
  '*.password',
  // Environment dumps.
  'env.SIGNATURE_SECRETS',
  'env.API_TOKENS',
  'env.DATABASE_URL',
  'env.REDIS_URL',
  'env.REDIS_PASSWORD',
  'REDIS_PASSWORD',
  'SIGNATURE_SECRETS',
  'API_TOKENS',
  'DATABASE_URL',
  'REDIS_URL',
];

/** `postgres://user:pw@host/db` -> `postgres://user:[redacted]@host/db`; anything else unparseable -> censored. */
export function redactUrl(value: unknown): string {
  if (typeof value !== 'string') return CENSOR;
  try {
    const url = new URL(value);
    if (url.password !== '') url.password = CENSOR;
    return url.toString();
  } catch {
    return CENSOR;
  }
}

function censor(value: unknown, path: string[]): unknown {
  const key = path[path.length - 1];
  return key !== undefined && URL_KEYS.has(key) ? redactUrl(value) : CENSOR;
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'swipe-authorizer' },
      redact: { paths: REDACT_PATHS, censor },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

// ---- request ids ---------------------------------------------------------

export const REQUEST_ID_HEADER = 'x-request-id';
const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;
const PROCESS_ID = randomBytes(4).toString('hex');
let requestSeq = 0;

/** A process-unique id: 8 hex chars of boot randomness + a base-36 counter. No crypto per call. */
export function newRequestId(): string {
  requestSeq = requestSeq >= Number.MAX_SAFE_INTEGER ? 1 : requestSeq + 1;
  return `${PROCESS_ID}-${requestSeq.toString(36)}`;
}

/** The caller's X-Request-Id when it is a sane token (bounded length, safe characters), else a new id. */
export function requestIdFrom(header: string | undefined): string {
  return header !== undefined && REQUEST_ID_RE.test(header) ? header : newRequestId();
}

/** Child logger whose every line carries `req_id`. */
export function requestLogger(logger: Logger, requestId: string): Logger {
  return logger.child({ req_id: requestId });
}

// ---- decision lines ------------------------------------------------------

export type DeclineReasonClass =
  | 'idempotency'
  | 'trip_state'
  | 'merchant'
  | 'velocity'
  | 'allowance'
  | 'storage'
  | 'other';

const REASON_CLASS: Readonly<Record<string, DeclineReasonClass>> = Object.freeze({
  IDEMPOTENCY_CONFLICT: 'idempotency',
  UNKNOWN_SHOPPER: 'trip_state',
  TRIP_CLOSED: 'trip_state',
  NO_ACTIVE_TRIP: 'trip_state',
  CURRENCY_MISMATCH: 'merchant',
  MERCHANT_MISMATCH: 'merchant',
  LOCATION_MISMATCH: 'merchant',
  VELOCITY_LIMIT: 'velocity',
  NO_ITEMS_PICKED: 'allowance',
  AMOUNT_EXCEEDS_ALLOWANCE: 'allowance',
  STORAGE_UNAVAILABLE: 'storage',
});

/** Groups the contract's decline reasons into the classes an SRE filters logs by. */
export function declineReasonClass(reason: string): DeclineReasonClass {
  return REASON_CLASS[reason] ?? 'other';
}

export interface DeclineLogFields {
  readonly reason: string;
  readonly amount_cents?: number;
  readonly trip_id?: string;
  readonly shopper_id?: string;
  readonly authorization_id?: string;
  readonly mode?: string;
}

/** One debug line per declined swipe: msg "swipe declined", with reason and reason_class. */
export function logDecline(log: Logger, requestId: string, fields: DeclineLogFields): void {
  if (!log.isLevelEnabled('debug')) return;
  log.debug(
    { req_id: requestId, reason_class: declineReasonClass(fields.reason), ...fields },
    'swipe declined',
  );
}

export interface FailOpenLogFields {
  readonly decision: 'approved' | 'declined';
  readonly amount_cents: number;
  readonly shopper_id: string;
  /** Why Redis was not used: timeout, connection, script, breaker_open. */
  readonly cause: string;
  readonly idempotency_key?: string;
  readonly transaction_id?: string;
  readonly authorization_id?: string;
  /** The shopper's fail-open total in this pod's window after this decision. */
  readonly shopper_window_cents?: number;
  /** What the pod's stand-in knowledge said (src/failopen/standIn.ts). */
  readonly stand_in?: string;
}

/** One warn line per fail-open decision: msg "fail-open decision". */
export function logFailOpen(log: Logger, requestId: string, fields: FailOpenLogFields): void {
  if (!log.isLevelEnabled('warn')) return;
  log.warn({ req_id: requestId, mode: 'fail_open', ...fields }, 'fail-open decision');
}
