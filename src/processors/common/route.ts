// One handler shape for the three processors' decision endpoints: authenticate as the
// processor does, parse its format into a ProcessorSwipe, decide in the one core, answer
// in its format. Metrics and late flagging as the native endpoint (src/decisions/authorize.ts).
import { isOverloaded } from '../../decisions/authorize.js';
import type { JsonValue } from '../../domain/json.js';
import type { Parsed } from '../../domain/money.js';
import { errorResponse, type HttpResponse } from '../../http/errors.js';
import { readJsonBody } from '../../http/jsonBody.js';
import type { Request } from '../../http/server.js';
import type { Metrics } from '../../observability/metrics.js';
import type { Tracing } from '../../observability/tracing.js';
import type { AuthorizeResult } from '../../redis/results.js';
import type { ProcessorCore } from './core.js';
import type { ProcessorSwipe } from './swipe.js';
import { cardKey, shopperKey } from '../../regions/directory.js';

export interface DecisionAdapter<Echo> {
  readonly label: string;
  readonly deadlineMs: number;
  /** Processor authentication on the raw request; false = 401. */
  authenticate(req: Request, nowMs: number): boolean;
  parse(body: JsonValue, req: Request): Parsed<{ swipe: ProcessorSwipe; echo: Echo }>;
  respond(result: AuthorizeResult, swipe: ProcessorSwipe, echo: Echo): HttpResponse;
}

export interface RouteDeps {
  readonly core: ProcessorCore;
  readonly metrics: Metrics;
  readonly tracing: Tracing;
  readonly now?: () => number;
  readonly onLate?: (shopperId: string, authorizationId: string, elapsedMs: number) => void;
  /** Peer regions are configured (CONTRACT §8): an UNKNOWN_SHOPPER here is forwarded. */
  readonly regionsLinked?: boolean;
}

export const INVALID_CREDENTIALS = errorResponse(
  'invalid_signature',
  'missing or invalid processor credentials',
);

export function createDecisionHandler<Echo>(deps: RouteDeps, adapter: DecisionAdapter<Echo>) {
  const { core, metrics, tracing } = deps;
  const now = deps.now ?? Date.now;
  return async (req: Request): Promise<HttpResponse> => {
    const span = tracing.requestSpan(adapter.label, req.headers.traceparent, req.headers.tracestate);
    try {
      const nowMs = now();
      if (!adapter.authenticate(req, nowMs)) return INVALID_CREDENTIALS;
      const json = readJsonBody(req.body);
      if (!json.ok) return json.response;
      const parsed = adapter.parse(json.json, req);
      if (!parsed.ok) return errorResponse('invalid_request', parsed.message);
      const { swipe, echo } = parsed.value;
      const { result, shopperId } = await core.decideSwipe(
        swipe,
        nowMs,
        span,
        req.regionUnreachable,
        req.regionAuthorizationId,
      );
      // This pod could not read Redis's answer in time: no decision, never fail open (§1 503).
      if (isOverloaded(result)) {
        metrics.httpShed.inc({ cause: 'redis_wait' });
        return errorResponse('overloaded', 'this pod could not read a Redis answer in time; retry');
      }
      // With peer regions a "not here" is forwarded: the deciding region counts it (src/regions/routing.ts).
      if (
        result.reason !== 'UNKNOWN_SHOPPER' ||
        deps.regionsLinked !== true ||
        req.regionUnreachable !== undefined
      )
        metrics.decisions.inc({
          decision: result.reason === undefined ? 'approved' : 'declined',
          reason: result.reason ?? 'none',
          mode: result.replayed ? 'replay' : result.mode,
        });
      span.setAttribute('swipe.decision', result.reason ?? 'none');
      const elapsedMs = Number(process.hrtime.bigint() - req.startedNs) / 1e6;
      metrics.decisionDuration.observe(elapsedMs / 1000);
      if (
        elapsedMs > adapter.deadlineMs &&
        shopperId !== undefined &&
        result.reason === undefined &&
        result.mode === 'normal' &&
        !result.replayed
      ) {
        deps.onLate?.(shopperId, result.authorizationId, elapsedMs);
      }
      const response = adapter.respond(result, swipe, echo);
      if (result.reason !== 'UNKNOWN_SHOPPER' || req.regionUnreachable !== undefined) return response;
      // Not here: the region seam (src/regions/routing.ts) looks for the card's or shopper's home.
      const key = shopperId === undefined ? cardKey(swipe.processor, swipe.cardId) : shopperKey(shopperId);
      return { ...response, notHere: key };
    } finally {
      span.end();
    }
  };
}

/** JSON string field, '' when absent or null. */
export function text(o: { [k: string]: JsonValue } | undefined, field: string, max = 256): string {
  const v = o?.[field];
  return typeof v === 'string' && v.length <= max ? v : '';
}
