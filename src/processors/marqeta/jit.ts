// Marqeta Gateway JIT Funding (CONTRACT §7): POST /v1/processors/marqeta/jit receives a
// transaction whose gpa_order.jit_funding asks us to fund it. Approve: 200 with the
// jit_funding echoed; decline: 402 with the echo and a decline_reason. Amounts are decimal
// major units, parsed exactly (src/domain/money.ts). Authentication: HTTP Basic.
import { isObject, JsonNumber, type JsonValue } from '../../domain/json.js';
import { type Parsed, parseAmountCents } from '../../domain/money.js';
import type { HttpResponse } from '../../http/errors.js';
import type { Request } from '../../http/server.js';
import type { AuthorizeResult, DeclineReason } from '../../redis/results.js';
import type { ProcessorConfig } from '../config.js';
import { createBasicCheck } from '../common/basicAuth.js';
import { type DecisionAdapter, text } from '../common/route.js';
import type { ProcessorSwipe } from '../common/swipe.js';

const TOKEN = /^[A-Za-z0-9_.-]{1,64}$/;
export const JIT_METHODS = ['pgfs.authorization', 'pgfs.authorization.incremental'] as const;

/** CONTRACT §7 decline mapping. */
export const MARQETA_DECLINE: Record<DeclineReason, string> = {
  IDEMPOTENCY_CONFLICT: 'DUPLICATE_TRANSACTION',
  UNKNOWN_SHOPPER: 'TRANSACTION_NOT_PERMITTED',
  TRIP_CLOSED: 'TRANSACTION_NOT_PERMITTED',
  NO_ACTIVE_TRIP: 'TRANSACTION_NOT_PERMITTED',
  CURRENCY_MISMATCH: 'INVALID_MERCHANT',
  MERCHANT_MISMATCH: 'INVALID_MERCHANT',
  LOCATION_MISMATCH: 'INVALID_MERCHANT',
  VELOCITY_LIMIT: 'TRANSACTION_COUNT_LIMIT_EXCEEDED',
  NO_ITEMS_PICKED: 'TRANSACTION_NOT_PERMITTED',
  AMOUNT_EXCEEDS_ALLOWANCE: 'INSUFFICIENT_FUNDS',
  STORAGE_UNAVAILABLE: 'TRANSACTION_NOT_PERMITTED',
};

function token(o: { [k: string]: JsonValue } | undefined, field: string): string {
  const v = o?.[field];
  return typeof v === 'string' && TOKEN.test(v) ? v : '';
}

/** The jit_funding fields we echo, each already JSON-encoded, in a fixed order. */
export interface MarqetaEcho {
  readonly fields: string;
}

function encode(v: JsonValue): string {
  return v instanceof JsonNumber ? v.raw : JSON.stringify(v);
}

/** The jit_funding fields echoed back, JSON-encoded, in the order Marqeta documents. */
function jitFundingEcho(jit: { [k: string]: JsonValue }): string {
  const echo: string[] = [];
  for (const f of [
    'token',
    'method',
    'user_token',
    'acting_user_token',
    'amount',
    'original_jit_funding_token',
  ]) {
    const v = jit[f];
    if (v !== undefined && v !== null) echo.push(`${JSON.stringify(f)}:${encode(v)}`);
  }
  return echo.join(',');
}

/** The swipe a JIT Funding request asks about, or why it cannot be read. */
function parseMarqetaJit(body: JsonValue): Parsed<{ swipe: ProcessorSwipe; echo: MarqetaEcho }> {
  if (!isObject(body)) return { ok: false, message: 'body must be a Marqeta transaction object' };
  const order = isObject(body['gpa_order']) ? body['gpa_order'] : undefined;
  const jit = order !== undefined && isObject(order['jit_funding']) ? order['jit_funding'] : undefined;
  if (jit === undefined) return { ok: false, message: 'gpa_order.jit_funding is required' };
  const jitToken = token(jit, 'token');
  if (jitToken === '') return { ok: false, message: 'gpa_order.jit_funding.token is required' };
  const method = jit['method'];
  if (typeof method !== 'string' || !(JIT_METHODS as readonly string[]).includes(method))
    return {
      ok: false,
      message: `gpa_order.jit_funding.method must be one of ${JIT_METHODS.join(', ')}`,
    };
  const userToken = token(jit, 'user_token');
  if (userToken === '') return { ok: false, message: 'gpa_order.jit_funding.user_token is required' };
  const amount = parseAmountCents(jit['amount'], 'gpa_order.jit_funding.amount');
  if (!amount.ok) return amount;
  const cardId = token(body, 'card_token');
  if (cardId === '') return { ok: false, message: 'card_token is required' };
  const currency = (text(body, 'currency_code', 3) || text(order, 'currency_code', 3) || 'USD').toUpperCase();
  if (!/^[A-Z]{3}$/.test(currency)) return { ok: false, message: 'currency_code must be ISO 4217' };
  const m = isObject(body['card_acceptor']) ? body['card_acceptor'] : undefined;
  const name = text(m, 'name');
  if (name === '') return { ok: false, message: 'card_acceptor.name is required' };
  const txnToken = token(body, 'token');
  return {
    ok: true,
    value: {
      swipe: {
        processor: 'marqeta',
        cardId,
        authorizationRef: txnToken !== '' ? txnToken : jitToken,
        requestId: jitToken,
        amountCents: amount.value,
        currency,
        merchant: {
          name,
          street: text(m, 'street_address') || text(m, 'address'),
          city: text(m, 'city'),
          state: text(m, 'state'),
          postal: text(m, 'postal_code', 32) || text(m, 'zip', 32),
          country: text(m, 'country_code', 8),
          mcc: text(m, 'mcc', 8),
          networkId: text(m, 'mid', 64),
        },
        // CONTRACT §7: Marqeta JIT Funding has no partial approvals.
        partialAllowed: false,
      },
      echo: { fields: jitFundingEcho(jit) },
    },
  };
}

export function marqetaJitAdapter(config: ProcessorConfig): DecisionAdapter<MarqetaEcho> {
  const authenticated = createBasicCheck(config.marqetaBasicAuth);
  return {
    label: 'POST /v1/processors/marqeta/jit',
    deadlineMs: config.marqetaDeadlineMs,
    authenticate: (req: Request) => authenticated(req.headers.authorization),
    parse: parseMarqetaJit,
    respond(result: AuthorizeResult, _swipe: ProcessorSwipe, echo: MarqetaEcho): HttpResponse {
      if (result.reason === undefined)
        return { status: 200, replayed: result.replayed, body: `{"jit_funding":{${echo.fields}}}` };
      return {
        status: 402,
        replayed: result.replayed,
        body: `{"jit_funding":{${echo.fields},"decline_reason":"${MARQETA_DECLINE[result.reason]}"}}`,
      };
    },
  };
}
