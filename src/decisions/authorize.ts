// POST /v1/authorizations: verify, validate, one authorizeSwipe script call,
// answer. Redis failures (infrastructure) never become business declines
// here: they go to the storage fallback (fail-open policy).
import { readSignedBody, SIGNATURE_ELSEWHERE_MESSAGE } from './signedBody.js';
import type { Config } from '../config/config.js';
import { errorResponse, type HttpResponse } from '../http/errors.js';
import type { Request } from '../http/server.js';
import { type Logger, logDecline, requestIdFrom } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { SpanLike, Tracing } from '../observability/tracing.js';
import type { Keys } from '../redis/keys.js';
import {
  AuthorizationIdTakenError,
  type AuthorizeResult,
  decodeScriptResult,
  SignatureUsedElsewhereError,
} from '../redis/results.js';
import { authorizeSwipe } from '../redis/commands.js';
import type { ScriptRunner } from '../redis/scripts.js';
import { RecentKeys } from './recentKeys.js';
import { parseSwipeRequest, type SwipeRequest } from './swipeRequest.js';
import { uuidv7Hex } from '../domain/ids.js';
import { sha256Hex } from '../auth/sha256.js';
import { OverloadedError, redisErrorKind } from '../failopen/breaker.js';
import { HomeUnreachableError } from '../regions/unreachable.js';

/** decide()'s answer when this pod was too slow to read Redis's answer: 503, no decision given. */
const OVERLOADED: AuthorizeResult = Object.freeze({
  reason: 'STORAGE_UNAVAILABLE',
  authorizationId: '',
  tripId: '',
  amountCents: 0,
  remainingCents: 0,
  mode: 'normal',
  replayed: false,
});

/** decide()'s answer when the signature was accepted on another processor endpoint: 401. */
const SIGNATURE_ELSEWHERE: AuthorizeResult = Object.freeze({ ...OVERLOADED });

/** Pod-local memory of idempotency keys for cross-partition conflicts (see recentKeys.ts). */
const RECENT_KEYS_MAX = 50_000;
const RECENT_KEYS_TTL_MS = 10 * 60_000;

/** What the api does when Redis cannot decide in time (see src/failopen/). */
export interface StorageFallback {
  /** May wait for the disk (the fail-open journal), never for Redis. */
  decide(
    request: SwipeRequest,
    authorizationId: string,
    nowMs: number,
    cause: unknown,
  ): AuthorizeResult | Promise<AuthorizeResult>;
  /** An answer this key is already owed (a fail-open approval not yet replayed into Redis): given before Redis is asked. */
  held?(request: SwipeRequest): Promise<AuthorizeResult> | undefined;
}

/** Deadline + circuit breaker around request-path Redis calls (src/failopen/breaker.ts). */
export interface RedisGuard {
  run<T>(fn: () => Promise<T>): Promise<T>;
}

/** The answer given without Redis: a fail-open approval, or the STORAGE_UNAVAILABLE decline. */
export function storageFallbackAnswer(
  request: SwipeRequest,
  authorizationId: string,
  approve: boolean,
): AuthorizeResult {
  return {
    reason: approve ? undefined : 'STORAGE_UNAVAILABLE',
    authorizationId,
    tripId: '',
    amountCents: request.amountCents,
    remainingCents: 0,
    mode: 'fail_open',
    replayed: false,
  };
}

/** Fail closed: every swipe is declined STORAGE_UNAVAILABLE. */
export const FAIL_CLOSED: StorageFallback = {
  decide: (request, authorizationId) => storageFallbackAnswer(request, authorizationId, false),
};

export function newAuthorizationId(nowMs: number = Date.now()): string {
  return `auth_${uuidv7Hex(nowMs)}`;
}

/** Response bodies are built from the (stored) result, so a replay is byte-identical. */
export function decisionResponse(r: AuthorizeResult): HttpResponse {
  if (r.reason === undefined) {
    return {
      status: 200,
      replayed: r.replayed,
      body: `{"decision":"approved","authorization_id":"${r.authorizationId}","trip_id":"${r.tripId}","amount_cents":${r.amountCents},"remaining_cents":${r.remainingCents},"mode":"${r.mode}"}`,
    };
  }
  return {
    status: 402,
    replayed: r.replayed,
    body: `{"decision":"declined","reason":"${r.reason}","authorization_id":"${r.authorizationId}","amount_cents":${r.amountCents},"remaining_cents":${r.remainingCents}}`,
  };
}

export interface AuthorizeDeps {
  readonly config: Config;
  readonly keys: Keys;
  readonly scripts: ScriptRunner;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly tracing: Tracing;
  readonly fallback: StorageFallback;
  readonly guard?: RedisGuard;
  readonly now?: () => number;
  /** Learns from every decision Redis makes (src/failopen/standIn.ts): the fail-open policy's stand-in knowledge. */
  readonly standIn?: { learnDecision(request: SwipeRequest, result: AuthorizeResult, nowMs: number): void };
  /** Called when an approval is answered after the processor's deadline (src/decisions/late.ts). */
  readonly onLate?: (shopperId: string, authorizationId: string, elapsedMs: number) => void;
}

/** One decision on a validated swipe: the core every swipe endpoint (native or processor) calls. */
export type Decide = (
  request: SwipeRequest,
  signature: string,
  nowMs: number,
  span: SpanLike,
  /** A forwarded swipe's id (Request.regionAuthorizationId); absent: one is minted. */
  forwardedId?: string,
) => Promise<AuthorizeResult>;

/** decide() answered OVERLOADED: this pod could not read Redis's answer in time (503, no decision). */
export function isOverloaded(result: AuthorizeResult): boolean {
  return result === OVERLOADED;
}

/** The OVERLOADED answer, for a caller whose own Redis call found this pod too slow. */
export function overloadedAnswer(): AuthorizeResult {
  return OVERLOADED;
}

/**
 * With peer regions, Redis records nothing for a shopper with no trip here (lua/authorizeSwipe-4.lua
 * ARGV[25]): the seam forwards the swipe to its home region. Should no region claim it, the decline's
 * id is derived from the request, so a retry of it gets the same body.
 */
function notHereAnswer(request: SwipeRequest, result: AuthorizeResult): AuthorizeResult {
  const id = sha256Hex(`${request.idempotencyKey}\n${request.fingerprint}`).slice(0, 28);
  return { ...result, authorizationId: `auth_nh_${id}` };
}

type DeciderDeps = Pick<
  AuthorizeDeps,
  'config' | 'keys' | 'scripts' | 'metrics' | 'fallback' | 'guard' | 'standIn' | 'onLate'
>;

/** The answer to a key this pod saw recently for another shopper (see recentKeys.ts). */
function recentConflictAnswer(request: SwipeRequest, earlierAuthorizationId: string): AuthorizeResult {
  return {
    reason: 'IDEMPOTENCY_CONFLICT',
    authorizationId: earlierAuthorizationId,
    tripId: '',
    amountCents: request.amountCents,
    remainingCents: 0,
    mode: 'normal',
    replayed: false,
  };
}

/**
 * The 503 is what the processor got; a decision Redis still makes on the abandoned call is
 * recorded: an approval among them is flagged late (the processor did not take it), so its hold
 * is released by reconciliation, as for any late answer.
 */
function flagAbandonedApproval(
  err: OverloadedError,
  request: SwipeRequest,
  nowMs: number,
  onLate: DeciderDeps['onLate'],
): void {
  err.abandoned
    ?.then((raw) => {
      const late = decodeScriptResult('authorizeSwipe', raw);
      if (late.reason === undefined && late.mode === 'normal' && !late.replayed) {
        onLate?.(request.shopperId, late.authorizationId, Date.now() - nowMs);
      }
    })
    // A Redis error, or a code that decided nothing (11, 12, 13: decodeScriptResult throws):
    // nothing to flag, and never an unhandled rejection.
    .catch(() => undefined);
}

/** Redis did not decide: overload and a signature used elsewhere are answered as such, the rest falls back. */
function afterRedisFailure(
  deps: DeciderDeps,
  err: unknown,
  request: SwipeRequest,
  authorizationId: string,
  nowMs: number,
): AuthorizeResult | Promise<AuthorizeResult> {
  // This pod is the slow part, not Redis: no decision here, and never fail open.
  if (err instanceof OverloadedError) {
    flagAbandonedApproval(err, request, nowMs, deps.onLate);
    return OVERLOADED;
  }
  if (err instanceof SignatureUsedElsewhereError) return SIGNATURE_ELSEWHERE;
  deps.metrics.redisErrors.inc({ kind: redisErrorKind(err) });
  return deps.fallback.decide(request, authorizationId, nowMs, err);
}

export function createDecider(deps: DeciderDeps): Decide {
  const { config, keys, scripts, fallback, guard } = deps;
  const recentKeys = new RecentKeys(RECENT_KEYS_MAX, RECENT_KEYS_TTL_MS);

  /** Redis decided: the stand-in learns it, an answer already owed wins, the key is remembered. */
  function afterRedisDecision(
    request: SwipeRequest,
    result: AuthorizeResult,
    tracked: boolean,
    nowMs: number,
  ): AuthorizeResult | Promise<AuthorizeResult> {
    deps.standIn?.learnDecision(request, result, nowMs);
    // A retry that reached Redis while the original call waited past its deadline gets
    // the decision the original's script made late; the original was answered by the
    // fallback meanwhile. The answer already given wins, as it does before Redis is asked
    // (its replay then makes Redis agree).
    const owed = fallback.held?.(request);
    if (owed !== undefined) return owed;
    if (tracked && result.reason !== 'IDEMPOTENCY_CONFLICT') {
      recentKeys.remember(
        request.idempotencyKey,
        { shopperId: request.shopperId, authorizationId: result.authorizationId },
        nowMs,
      );
    }
    return result;
  }

  return async function decide(
    request: SwipeRequest,
    signature: string,
    nowMs: number,
    span: SpanLike,
    forwardedId?: string,
  ): Promise<AuthorizeResult> {
    const held = fallback.held?.(request);
    if (held !== undefined) return held;
    const tracked = RecentKeys.tracks(request.idempotencyKey);
    const earlier = tracked
      ? recentKeys.conflict(request.idempotencyKey, request.shopperId, nowMs)
      : undefined;
    if (earlier !== undefined) return recentConflictAnswer(request, earlier.authorizationId);
    const authorizationId = forwardedId ?? newAuthorizationId(nowMs);
    try {
      const result = await authorizeSwipe(
        { config, keys, scripts },
        request,
        { nowMs, authorizationId, signature, forwarded: forwardedId !== undefined },
        guard === undefined ? { span } : { span, guard },
      );
      const notHere =
        result.reason === 'UNKNOWN_SHOPPER' && !result.replayed && config.regions.peers.size > 0;
      return afterRedisDecision(request, notHere ? notHereAnswer(request, result) : result, tracked, nowMs);
    } catch (err) {
      // The forwarded id names another decision here: this one is decided as any other, under
      // an id of its own (nothing was written). Its forwarder's fail-open answer, if any, is
      // then a `conflict` on replay, as before forwarded ids.
      if (err instanceof AuthorizationIdTakenError) return decide(request, signature, nowMs, span);
      return afterRedisFailure(deps, err, request, authorizationId, nowMs);
    }
  };
}

/** Not here, and its home region is silent (CONTRACT §8): the fail-open policy answers. */
function orHomeUnreachable(
  deps: Pick<AuthorizeDeps, 'fallback'>,
  req: Request,
  request: SwipeRequest,
  result: AuthorizeResult,
  nowMs: number,
): AuthorizeResult | Promise<AuthorizeResult> {
  if (req.regionUnreachable === undefined || result.reason !== 'UNKNOWN_SHOPPER') return result;
  const cause = new HomeUnreachableError(req.regionUnreachable.home);
  // Under the id the forward carried: should the home have decided it, the replay finds that decision.
  const authorizationId = req.regionUnreachable.authorizationId ?? newAuthorizationId(nowMs);
  return deps.fallback.decide(request, authorizationId, nowMs, cause);
}

/** With peer regions a "not here" is forwarded: the deciding region counts it (src/regions/routing.ts). */
function countDecision(metrics: Metrics, config: Config, req: Request, result: AuthorizeResult): void {
  if (
    result.reason === 'UNKNOWN_SHOPPER' &&
    config.regions.peers.size > 0 &&
    req.regionUnreachable === undefined
  )
    return;
  metrics.decisions.inc({
    decision: result.reason === undefined ? 'approved' : 'declined',
    reason: result.reason ?? 'none',
    mode: result.replayed ? 'replay' : result.mode,
  });
}

export function createAuthorizeHandler(deps: AuthorizeDeps): (req: Request) => Promise<HttpResponse> {
  const { config, metrics, logger, tracing } = deps;
  const now = deps.now ?? Date.now;
  const decide = createDecider(deps);

  return async (req) => {
    const span = tracing.requestSpan(
      'POST /v1/authorizations',
      req.headers.traceparent,
      req.headers.tracestate,
    );
    try {
      // One clock reading per request: signature window, derived-key window and the script agree.
      const nowMs = now();
      const signed = readSignedBody(req, config, nowMs);
      if (!signed.ok) return signed.response;
      const parsed = parseSwipeRequest(signed.body, req.headers.idempotencyKey, nowMs, signed.signature.id);
      if (!parsed.ok) return errorResponse('invalid_request', parsed.message);

      const decided = await decide(parsed.value, signed.signature.id, nowMs, span, req.regionAuthorizationId);
      const result = await orHomeUnreachable(deps, req, parsed.value, decided, nowMs);
      if (result === SIGNATURE_ELSEWHERE) {
        return errorResponse('invalid_signature', SIGNATURE_ELSEWHERE_MESSAGE);
      }
      if (result === OVERLOADED) {
        metrics.httpShed.inc({ cause: 'redis_wait' });
        span.setAttribute('swipe.decision', 'overloaded');
        return errorResponse('overloaded', 'this pod could not read a Redis answer in time; retry');
      }
      const reason = result.reason ?? 'none';
      countDecision(metrics, config, req, result);
      if (result.reason !== undefined && logger.isLevelEnabled('debug')) {
        logDecline(logger, requestIdFrom(req.headers.requestId || undefined), {
          reason,
          amount_cents: result.amountCents,
          trip_id: result.tripId,
          shopper_id: parsed.value.shopperId,
          authorization_id: result.authorizationId,
          mode: result.replayed ? 'replay' : result.mode,
        });
      }
      span.setAttribute('swipe.decision', reason);
      // A trip is (shopper_id, trip_id): a trace names both.
      span.setAttribute('swipe.shopper_id', parsed.value.shopperId);
      if (result.tripId !== '') span.setAttribute('swipe.trip_id', result.tripId);
      const response = decisionResponse(result);
      const elapsedS = Number(process.hrtime.bigint() - req.startedNs) / 1e9;
      metrics.decisionDuration.observe(elapsedS);
      if (
        elapsedS * 1000 > config.processorDeadlineMs &&
        result.reason === undefined &&
        result.mode === 'normal' &&
        !result.replayed
      ) {
        deps.onLate?.(parsed.value.shopperId, result.authorizationId, elapsedS * 1000);
      }
      return response;
    } finally {
      span.end();
    }
  };
}
