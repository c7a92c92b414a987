// Stripe Issuing real-time authorizations (CONTRACT §7): POST /v1/processors/stripe/authorizations
// receives the `issuing_authorization.request` event; we answer 200 with `approved` (and `amount`
// for a partial approval when the request `is_amount_controllable`), plus the Stripe-Version header.
// Signature: Stripe's own helper (stripe.webhooks.signature.verifyHeader) over the raw bytes.
import Stripe from 'stripe';
import { isObject, type JsonValue } from '../../domain/json.js';
import type { Parsed } from '../../domain/money.js';
import { AMOUNT_CENTS_MAX, parseIntegerInRange } from '../../domain/money.js';
import type { HttpResponse } from '../../http/errors.js';
import type { Request } from '../../http/server.js';
import type { AuthorizeResult } from '../../redis/results.js';
import type { ProcessorConfig } from '../config.js';
import { type DecisionAdapter, text } from '../common/route.js';
import type { ProcessorSwipe } from '../common/swipe.js';

/** Request headers the Stripe routes read (HttpServer Route.headers). */
export const STRIPE_HEADERS = ['stripe-signature'] as const;
/** Stripe's default tolerance; CONTRACT §7: 300 s. */
export const STRIPE_TOLERANCE_S = 300;
const STRIPE_ID = /^[A-Za-z0-9_]{1,100}$/;
const SIGNATURE = (() => {
  const s = Stripe.webhooks.signature;
  if (s === null) throw new Error('the stripe package has no webhook signature helper');
  return s;
})();

/** True when one configured secret verifies the Stripe-Signature header on these bytes. */
export function verifyStripeSignature(
  secrets: readonly string[],
  header: string,
  body: Buffer,
  nowMs: number,
): boolean {
  if (header === '' || header.length > 4096) return false;
  // Stripe's helper bounds the age; a timestamp from the future is bounded here (CONTRACT §7: 300 s).
  const t = /(?:^|,)t=(\d{1,12})(?:,|$)/.exec(header);
  if (t === null || Number(t[1]) * 1000 - nowMs > STRIPE_TOLERANCE_S * 1000) return false;
  for (const secret of secrets) {
    try {
      SIGNATURE.verifyHeader(body, header, secret, STRIPE_TOLERANCE_S, undefined, nowMs);
      return true;
    } catch {
      // next secret (rotation)
    }
  }
  return false;
}

function id(o: { [k: string]: JsonValue } | undefined, field: string): string {
  const v = o?.[field];
  if (typeof v === 'string') return STRIPE_ID.test(v) ? v : '';
  if (isObject(v)) return id(v, 'id');
  return '';
}

export interface StripeEcho {
  readonly controllable: boolean;
}

export function stripeAuthorizationAdapter(config: ProcessorConfig): DecisionAdapter<StripeEcho> {
  const versionHeader = [['Stripe-Version', config.stripeApiVersion]] as const;
  return {
    label: 'POST /v1/processors/stripe/authorizations',
    deadlineMs: config.stripeDeadlineMs,
    authenticate: (req: Request, nowMs: number) =>
      verifyStripeSignature(config.stripeWebhookSecrets, req.headers.extra?.[0] ?? '', req.body, nowMs),
    parse: (body: JsonValue) => parseStripeAuthorization(body, config.partialApprovals),
    respond(result: AuthorizeResult, swipe: ProcessorSwipe): HttpResponse {
      return {
        status: 200,
        replayed: result.replayed,
        headers: versionHeader,
        body: stripeBody(result, swipe),
      };
    },
  };
}

/** The swipe an `issuing_authorization.request` event asks about, or why it cannot be read. */
function parseStripeAuthorization(
  body: JsonValue,
  partialApprovals: boolean,
): Parsed<{ swipe: ProcessorSwipe; echo: StripeEcho }> {
  if (!isObject(body)) return { ok: false, message: 'body must be a Stripe event object' };
  if (body['type'] !== 'issuing_authorization.request')
    return { ok: false, message: 'type must be issuing_authorization.request' };
  const data = body['data'];
  const auth = isObject(data) ? data['object'] : undefined;
  if (!isObject(auth)) return { ok: false, message: 'data.object must be an Issuing Authorization' };
  const authId = id(auth, 'id');
  if (authId === '') return { ok: false, message: 'data.object.id must be a Stripe id' };
  const cardId = id(auth, 'card');
  if (cardId === '') return { ok: false, message: 'data.object.card must be a card or its id' };
  const pending = auth['pending_request'];
  if (!isObject(pending)) return { ok: false, message: 'data.object.pending_request is required' };
  const amount = parseIntegerInRange(
    pending['amount'],
    'data.object.pending_request.amount',
    1,
    AMOUNT_CENTS_MAX,
  );
  if (!amount.ok) return amount;
  const currency = text(pending, 'currency', 3).toUpperCase();
  if (!/^[A-Z]{3}$/.test(currency))
    return { ok: false, message: 'data.object.pending_request.currency must be an ISO 4217 code' };
  const history = auth['request_history'];
  const earlier = Array.isArray(history) ? history.length : 0;
  const m = isObject(auth['merchant_data']) ? auth['merchant_data'] : undefined;
  const name = text(m, 'name');
  if (name === '') return { ok: false, message: 'data.object.merchant_data.name is required' };
  const controllable = pending['is_amount_controllable'] === true;
  return {
    ok: true,
    value: {
      swipe: {
        processor: 'stripe',
        cardId,
        authorizationRef: authId,
        // An incremental request is a new decision on the same authorization; a retry of
        // one request has the same history length (a replay).
        requestId: earlier === 0 ? authId : `${authId}:${earlier}`,
        amountCents: amount.value,
        currency,
        merchant: {
          name,
          street: '',
          city: text(m, 'city'),
          state: text(m, 'state'),
          postal: text(m, 'postal_code', 32),
          country: text(m, 'country', 8),
          mcc: text(m, 'category_code', 8),
          networkId: text(m, 'network_id', 64),
        },
        partialAllowed: partialApprovals && controllable,
      },
      echo: { controllable },
    },
  };
}

/** Metadata values are strings (Stripe's rule); fixed key order so a replay is byte-identical. */
export function stripeBody(r: AuthorizeResult, swipe: ProcessorSwipe): string {
  const meta = `"authorization_id":"${r.authorizationId}","trip_id":"${r.tripId}","remaining_cents":"${r.remainingCents}","mode":"${r.mode}"`;
  if (r.reason !== undefined) return `{"approved":false,"metadata":{"reason":"${r.reason}",${meta}}}`;
  const partial = r.amountCents < swipe.amountCents ? `,"amount":${r.amountCents}` : '';
  return `{"approved":true${partial},"metadata":{${meta}}}`;
}
