// Lithic Auth Stream Access (CONTRACT §7): POST /v1/processors/lithic/asa receives
// `card_authorization.approval_request`; we answer 200 {"result","token"} (and
// `approved_amount` for a partial approval when the terminal is partial_approval_capable).
// Authentication: Standard Webhooks, verified with the `standardwebhooks` package.
import { Webhook } from 'standardwebhooks';
import { isObject, type JsonValue } from '../../domain/json.js';
import { AMOUNT_CENTS_MAX, type Parsed, parseIntegerInRange } from '../../domain/money.js';
import type { HttpResponse } from '../../http/errors.js';
import type { Request } from '../../http/server.js';
import type { AuthorizeResult, DeclineReason } from '../../redis/results.js';
import type { ProcessorConfig } from '../config.js';
import { type DecisionAdapter, text } from '../common/route.js';
import type { ProcessorSwipe } from '../common/swipe.js';

export const LITHIC_HEADERS = ['webhook-id', 'webhook-timestamp', 'webhook-signature'] as const;
const TOKEN = /^[A-Za-z0-9_-]{1,64}$/;

/** CONTRACT §7 decline mapping. */
export const LITHIC_RESULT: Record<DeclineReason, string> = {
  IDEMPOTENCY_CONFLICT: 'SUSPECTED_FRAUD',
  UNKNOWN_SHOPPER: 'CARD_PAUSED',
  TRIP_CLOSED: 'CARD_PAUSED',
  NO_ACTIVE_TRIP: 'CARD_PAUSED',
  CURRENCY_MISMATCH: 'UNAUTHORIZED_MERCHANT',
  MERCHANT_MISMATCH: 'UNAUTHORIZED_MERCHANT',
  LOCATION_MISMATCH: 'UNAUTHORIZED_MERCHANT',
  VELOCITY_LIMIT: 'VELOCITY_EXCEEDED',
  NO_ITEMS_PICKED: 'CARD_PAUSED',
  AMOUNT_EXCEEDS_ALLOWANCE: 'INSUFFICIENT_FUNDS',
  STORAGE_UNAVAILABLE: 'INSUFFICIENT_FUNDS',
};

/** Verifies a Standard Webhooks request against every configured secret (rotation). */
export function createStandardWebhookCheck(secrets: readonly string[]) {
  const verifiers = secrets.map((s) => new Webhook(s));
  return (req: Request): boolean => {
    const [id = '', timestamp = '', signature = ''] = req.headers.extra ?? [];
    if (id === '' || timestamp === '' || signature === '' || signature.length > 4096) return false;
    const headers = { 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': signature };
    for (const v of verifiers) {
      try {
        v.verify(req.body, headers, { jsonParse: false } as never);
        return true;
      } catch {
        // next secret
      }
    }
    return false;
  };
}

function token(o: { [k: string]: JsonValue } | undefined, field: string): string {
  const v = o?.[field];
  return typeof v === 'string' && TOKEN.test(v) ? v : '';
}

export interface LithicEcho {
  readonly token: string;
}

/** The merchant fields of an ASA request (name is the checked descriptor). */
function lithicMerchant(m: { [k: string]: JsonValue } | undefined, name: string): ProcessorSwipe['merchant'] {
  return {
    name,
    street: text(m, 'street_address'),
    city: text(m, 'city'),
    state: text(m, 'state'),
    postal: text(m, 'postal_code', 32),
    country: text(m, 'country', 8),
    mcc: text(m, 'mcc', 8),
    networkId: text(m, 'acceptor_id', 64),
  };
}

/** The swipe an ASA approval request asks about, or why it cannot be read. */
function parseLithicAsa(
  body: JsonValue,
  req: Request,
  partialApprovals: boolean,
): Parsed<{ swipe: ProcessorSwipe; echo: LithicEcho }> {
  if (!isObject(body)) return { ok: false, message: 'body must be an ASA request object' };
  const type = body['event_type'];
  if (type !== undefined && type !== 'card_authorization.approval_request')
    return { ok: false, message: 'event_type must be card_authorization.approval_request' };
  const txn = token(body, 'token');
  if (txn === '') return { ok: false, message: 'token is required' };
  const card = isObject(body['card']) ? body['card'] : undefined;
  const cardId = card !== undefined ? token(card, 'token') : token(body, 'card_token');
  if (cardId === '') return { ok: false, message: 'card.token is required' };
  const amounts = isObject(body['amounts']) ? body['amounts'] : undefined;
  const cardholder =
    amounts !== undefined && isObject(amounts['cardholder']) ? amounts['cardholder'] : undefined;
  const amount = parseIntegerInRange(
    cardholder !== undefined ? cardholder['amount'] : body['amount'],
    cardholder !== undefined ? 'amounts.cardholder.amount' : 'amount',
    1,
    AMOUNT_CENTS_MAX,
  );
  if (!amount.ok) return amount;
  const currency = (text(cardholder, 'currency', 3) || 'USD').toUpperCase();
  if (!/^[A-Z]{3}$/.test(currency))
    return { ok: false, message: 'amounts.cardholder.currency must be ISO 4217' };
  const m = isObject(body['merchant']) ? body['merchant'] : undefined;
  const name = text(m, 'descriptor');
  if (name === '') return { ok: false, message: 'merchant.descriptor is required' };
  const pos = isObject(body['pos']) ? body['pos'] : undefined;
  const terminal = pos !== undefined && isObject(pos['terminal']) ? pos['terminal'] : undefined;
  const partialCapable = terminal?.['partial_approval_capable'] === true;
  // The per-request id: event_token when the program has it, else the Standard Webhooks
  // message id (the same on a redelivery). An incremental request shares `token`.
  const eventToken = token(body, 'event_token');
  const messageId = (req.headers.extra?.[0] ?? '').slice(0, 64);
  return {
    ok: true,
    value: {
      swipe: {
        processor: 'lithic',
        cardId,
        authorizationRef: txn,
        requestId: eventToken !== '' ? eventToken : `${txn}:${messageId}`,
        amountCents: amount.value,
        currency,
        merchant: lithicMerchant(m, name),
        partialAllowed: partialApprovals && partialCapable,
      },
      echo: { token: txn },
    },
  };
}

export function lithicAsaAdapter(config: ProcessorConfig, deadlineMs: number): DecisionAdapter<LithicEcho> {
  const authenticated = createStandardWebhookCheck(config.lithicWebhookSecrets);
  return {
    label: 'POST /v1/processors/lithic/asa',
    deadlineMs,
    authenticate: (req) => authenticated(req),
    parse: (body: JsonValue, req: Request) => parseLithicAsa(body, req, config.partialApprovals),
    respond(result: AuthorizeResult, swipe: ProcessorSwipe, echo: LithicEcho): HttpResponse {
      if (result.reason !== undefined) {
        return {
          status: 200,
          replayed: result.replayed,
          body: `{"result":"${LITHIC_RESULT[result.reason]}","token":"${echo.token}"}`,
        };
      }
      const partial =
        result.amountCents < swipe.amountCents ? `,"approved_amount":${result.amountCents}` : '';
      return {
        status: 200,
        replayed: result.replayed,
        body: `{"result":"APPROVED","token":"${echo.token}"${partial}}`,
      };
    },
  };
}
