// The three processors' events endpoints (CONTRACT §7): authenticate as each processor does,
// parse its events into ProcessorEvents, apply them (src/processors/common/events.ts).
// Unknown event types: 200 and ignored. Redis trouble: 503, so the processor redelivers.
import { isObject, JsonNumber, type JsonValue } from '../domain/json.js';
import { AMOUNT_CENTS_MAX, parseAmountCents, parseIntegerInRange } from '../domain/money.js';
import { errorResponse, type HttpResponse, jsonResponse } from '../http/errors.js';
import { readJsonBody } from '../http/jsonBody.js';
import type { Request } from '../http/server.js';
import type { Logger } from '../observability/logger.js';
import type { EventAction, EventApplier, EventOutcome, ProcessorEvent } from './common/events.js';
import { cardKey } from '../regions/directory.js';
import { INVALID_CREDENTIALS, text } from './common/route.js';

type Obj = { [k: string]: JsonValue };
const obj = (v: JsonValue | undefined): Obj | undefined => (isObject(v) ? v : undefined);
/** A Stripe id ('' when absent or longer than any real one: the persister refuses such ids). */
const idOf = (v: JsonValue | undefined): string => {
  const id = typeof v === 'string' ? v : isObject(v) && typeof v['id'] === 'string' ? v['id'] : '';
  return id.length <= 255 ? id : '';
};
/** Minor units, sign dropped (Stripe captures and Lithic events may be negative). */
function minor(v: JsonValue | undefined): number | undefined {
  if (!(v instanceof JsonNumber)) return undefined;
  const r = parseIntegerInRange(new JsonNumber(v.raw.replace(/^-/, '')), 'amount', 0, AMOUNT_CENTS_MAX);
  return r.ok ? r.value : undefined;
}
const ignore = (why: string): EventAction => ({ kind: 'ignore', why });
/** The processor's time of an event, from 2000 to 2100 (else now): the persister books no other. */
const timeOf = (v: JsonValue | undefined, fallbackMs: number): number => {
  if (typeof v === 'string') {
    const ms = Date.parse(v);
    if (Number.isFinite(ms)) return ms > 946_684_800_000 && ms < 4_102_444_800_000 ? ms : fallbackMs;
  }
  const n = minor(v);
  return n !== undefined && n > 946_684_800 && n < 4_102_444_800 ? n * 1000 : fallbackMs;
};

/** Marqeta transaction types that move money back to the card (an authorization of a refund does not). */
const MARQETA_REFUNDS = new Set(['refund', 'refund.authorization.clearing']);

function refundOf(amountCents: number, currency: JsonValue | undefined, refundedAtMs: number): EventAction {
  const c = typeof currency === 'string' && /^[A-Za-z]{3}$/.test(currency) ? currency.toUpperCase() : '';
  return { kind: 'refund', amountCents, currency: c, refundedAtMs };
}

export function parseStripeEvents(body: Obj, nowMs: number): ProcessorEvent[] {
  const type = body['type'];
  const data = obj(body['data']);
  const o = obj(data?.['object']);
  const eventId = idOf(body['id']);
  if (o === undefined || eventId === '') return [];
  if (type === 'issuing_authorization.updated') {
    const base = {
      processor: 'stripe' as const,
      cardId: idOf(o['card']),
      authorizationRef: idOf(o['id']),
      eventId,
    };
    const status = o['status'];
    // Stripe: voided = reversed with amount 0; expired without capture = reversed with the amount
    // left for late captures, which is our hold expiry (a late capture still posts).
    if (status === 'reversed') {
      const left = minor(o['amount']);
      if (left !== undefined && left > 0) return [{ ...base, action: { kind: 'expire' } }];
      return [{ ...base, action: { kind: 'release', amountCents: 'all' } }];
    }
    if (status === 'expired') return [{ ...base, action: { kind: 'expire' } }];
    // Closed: captured (its capture transaction clears it and releases the rest, whichever
    // arrives first) or declined (nothing held). Its amount going to 0 releases nothing.
    if (status === 'closed') return [{ ...base, action: ignore('authorization closed') }];
    const before = minor(obj(data?.['previous_attributes'])?.['amount']);
    const after = minor(o['amount']);
    if (before !== undefined && after !== undefined && after < before)
      return [{ ...base, action: { kind: 'release', amountCents: before - after } }];
    return [{ ...base, action: ignore('authorization updated without a lower amount') }];
  }
  if (type === 'issuing_transaction.created') {
    const base = {
      processor: 'stripe' as const,
      cardId: idOf(o['card']),
      authorizationRef: idOf(o['authorization']),
      eventId,
    };
    const amount = minor(o['amount']);
    if (o['type'] === 'capture' && amount !== undefined && amount > 0 && base.authorizationRef !== '')
      return [
        { ...base, action: { kind: 'clear', amountCents: amount, clearedAtMs: timeOf(o['created'], nowMs) } },
      ];
    if (o['type'] === 'refund' && amount !== undefined && amount > 0)
      return [
        {
          ...base,
          // The transaction's own id (ipi_…) is the refund's: two events about it are one refund.
          eventId: idOf(o['id']) || eventId,
          action: refundOf(amount, o['currency'], timeOf(o['created'], nowMs)),
        },
      ];
    return [{ ...base, action: ignore(`transaction ${String(o['type'])}`) }];
  }
  return [];
}

export function parseMarqetaEvents(body: Obj, nowMs: number): ProcessorEvent[] {
  const list = body['transactions'];
  if (!Array.isArray(list)) return [];
  const out: ProcessorEvent[] = [];
  for (const t of list) {
    const o = obj(t);
    if (o === undefined) continue;
    const type = o['type'];
    const base = {
      processor: 'marqeta' as const,
      cardId: text(o, 'card_token', 64),
      authorizationRef: text(o, 'preceding_related_transaction_token', 64),
      eventId: text(o, 'token', 64),
    };
    if (base.eventId === '' || (base.authorizationRef === '' && !MARQETA_REFUNDS.has(String(type)))) continue;
    const amount = parseAmountCents(o['amount'], 'amount');
    // No amount: the whole hold. An amount we cannot read exactly releases nothing.
    if (type === 'authorization.reversal')
      out.push({
        ...base,
        action: amount.ok
          ? { kind: 'release', amountCents: amount.value }
          : o['amount'] === undefined || o['amount'] === null
            ? { kind: 'release', amountCents: 'all' }
            : ignore(`reversal amount: ${amount.message}`),
      });
    else if (type === 'authorization.clearing' && amount.ok)
      out.push({
        ...base,
        action: { kind: 'clear', amountCents: amount.value, clearedAtMs: timeOf(o['created_time'], nowMs) },
      });
    else if (MARQETA_REFUNDS.has(String(type)) && amount.ok)
      out.push({
        ...base,
        action: refundOf(amount.value, o['currency_code'], timeOf(o['created_time'], nowMs)),
      });
    else if (type === 'authorization.reversal.issuerexpiration')
      out.push({ ...base, action: { kind: 'expire' } });
    else out.push({ ...base, action: ignore(`type ${String(type)}`) });
  }
  return out;
}

export function parseLithicEvents(body: Obj, nowMs: number): ProcessorEvent[] {
  if (body['event_type'] !== 'card_transaction.updated') return [];
  const events = body['events'];
  const cardId = text(body, 'card_token', 64) || text(obj(body['card']), 'token', 64);
  const ref = text(body, 'token', 64);
  if (!Array.isArray(events) || ref === '') return [];
  const out: ProcessorEvent[] = [];
  for (const ev of events) {
    const o = obj(ev);
    if (o === undefined) continue;
    const eventId = text(o, 'token', 64);
    if (eventId === '') continue;
    const amounts = obj(o['amounts']);
    const rawAmount = obj(amounts?.['cardholder'])?.['amount'] ?? o['amount'];
    const amount = minor(rawAmount);
    const base = { processor: 'lithic' as const, cardId, authorizationRef: ref, eventId };
    const type = o['type'];
    // No amount (or 0): the whole hold. An amount we cannot read exactly releases nothing.
    if (type === 'AUTHORIZATION_REVERSAL')
      out.push({
        ...base,
        action:
          amount !== undefined && amount > 0
            ? { kind: 'release', amountCents: amount }
            : amount === undefined && rawAmount !== undefined && rawAmount !== null
              ? ignore('reversal amount is not an integer of minor units')
              : { kind: 'release', amountCents: 'all' },
      });
    else if (type === 'CLEARING' && amount !== undefined && amount > 0)
      out.push({
        ...base,
        action: { kind: 'clear', amountCents: amount, clearedAtMs: timeOf(o['created'], nowMs) },
      });
    else if (type === 'RETURN' && amount !== undefined && amount > 0) {
      const currency = obj(obj(amounts?.['cardholder']))?.['currency'] ?? body['currency'];
      out.push({ ...base, action: refundOf(amount, currency, timeOf(o['created'], nowMs)) });
    } else if (type === 'AUTHORIZATION_EXPIRY') out.push({ ...base, action: { kind: 'expire' } });
    else out.push({ ...base, action: ignore(`event ${String(type)}`) });
  }
  return out;
}

/**
 * Events one request applies (each is a few Redis calls, in order). A body with more is refused
 * whole (400, logged), never cut short: an acknowledged body is never redelivered, so events
 * past a cut would be lost without a trace. Parsing all of them is bounded by the body size.
 */
export const EVENTS_PER_REQUEST_MAX = 100;

/** Every event is about one card this region does not know: the region seam looks for the card's home. */
function notHereCard(
  events: readonly ProcessorEvent[],
  outcomes: readonly EventOutcome[],
): string | undefined {
  const first = events[0];
  if (first === undefined || outcomes.some((o) => o !== 'unknown_card')) return undefined;
  if (events.some((e) => e.cardId !== first.cardId || e.processor !== first.processor)) return undefined;
  return cardKey(first.processor, first.cardId);
}

export function createEventsHandler(deps: {
  readonly applier: EventApplier;
  readonly logger: Logger;
  readonly authenticate: (req: Request, nowMs: number) => boolean;
  readonly parse: (body: Obj, nowMs: number) => ProcessorEvent[];
  readonly now?: () => number;
}) {
  const now = deps.now ?? Date.now;
  return async (req: Request): Promise<HttpResponse> => {
    const nowMs = now();
    if (!deps.authenticate(req, nowMs)) return INVALID_CREDENTIALS;
    const json = readJsonBody(req.body);
    if (!json.ok) return json.response;
    if (!isObject(json.json)) return errorResponse('invalid_request', 'body must be a JSON object');
    const events = deps.parse(json.json, nowMs);
    if (events.length > EVENTS_PER_REQUEST_MAX) {
      deps.logger.warn({ events: events.length }, 'processor notification refused: too many events');
      return errorResponse(
        'invalid_request',
        `at most ${EVENTS_PER_REQUEST_MAX} events per notification (this one has ${events.length})`,
      );
    }
    try {
      const outcomes = await deps.applier.applyAll(events);
      const response = jsonResponse(200, {
        received: true,
        events: events.map((e, i) => ({ id: e.eventId, outcome: outcomes[i] })),
      });
      const key = notHereCard(events, outcomes);
      return key === undefined ? response : { ...response, notHere: key };
    } catch (err) {
      deps.logger.warn({ err }, 'processor event could not be applied');
      return errorResponse('storage_unavailable', 'storage is unavailable, retry later');
    }
  };
}
