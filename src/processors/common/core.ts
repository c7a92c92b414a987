// The processor side of the one decision core: find the card's shopper (one cheap
// call in the card's slot), then the same decision as CONTRACT §1 (one authorizeSwipe
// call in the shopper's slot, with its deadline, breaker and fail-open fallback).
import { sha256Hex } from '../../auth/sha256.js';
import {
  type Decide,
  newAuthorizationId,
  overloadedAnswer,
  type RedisGuard,
  type StorageFallback,
  storageFallbackAnswer,
} from '../../decisions/authorize.js';
import { OverloadedError, redisErrorKind } from '../../failopen/breaker.js';
import type { Metrics } from '../../observability/metrics.js';
import type { SpanLike } from '../../observability/tracing.js';
import type { Keys } from '../../redis/keys.js';
import { type AuthorizeResult, PartitionNotReadyError } from '../../redis/results.js';
import type { ScriptRunner } from '../../redis/scripts.js';
import { type CardLookup, lookupCard, recordUnknownCardSwipe } from '../../redis/commands.js';
import { type ProcessorSwipe, toSwipeRequest } from './swipe.js';
import type { RegionUnreachable } from '../../http/server.js';
import { HomeUnreachableError } from '../../regions/unreachable.js';

/**
 * Cards this pod has seen active recently, card → shopper: used only when Redis cannot
 * answer, so the fail-open policy (per-shopper caps, journal replay into the right trip)
 * knows whose swipe it is. Bounded; emptied when full.
 */
const KNOWN_CARDS_MAX = 100_000;

export interface ProcessorCoreDeps {
  readonly keys: Keys;
  readonly scripts: ScriptRunner;
  readonly metrics: Metrics;
  readonly fallback: StorageFallback;
  readonly guard?: RedisGuard;
  readonly decide: Decide;
  /** Unknown-card swipes recorded per partition per minute (UNKNOWN_CARD_RECORDS_PER_MINUTE). */
  readonly unknownCardRecordsPerMinute: number;
  /** REGION_PEERS set: a "not here" answer may be forwarded, so it is not recorded here. */
  readonly regionPeers: boolean;
}

export interface ProcessorDecision {
  readonly result: AuthorizeResult;
  /** The card's shopper, when known. */
  readonly shopperId: string | undefined;
}

/** Another region's card or shopper whose home is silent (CONTRACT §8): the fail-open policy answers. */
async function homeUnreachable(
  fallback: StorageFallback,
  swipe: ProcessorSwipe,
  nowMs: number,
  unreachable: RegionUnreachable,
  shopperId: string | undefined,
): Promise<ProcessorDecision> {
  // Under the id the forward carried: should the home have decided it, the replay finds that decision.
  const authorizationId = unreachable.authorizationId ?? newAuthorizationId(nowMs);
  if (shopperId === undefined) {
    // Whose card it is is not known: no per-shopper cap, no trip to replay into (as storageFailed).
    const request = toSwipeRequest(swipe, '');
    return { result: storageFallbackAnswer(request, authorizationId, false), shopperId: undefined };
  }
  const request = toSwipeRequest(swipe, shopperId);
  const cause = new HomeUnreachableError(unreachable.home);
  return { result: await fallback.decide(request, authorizationId, nowMs, cause), shopperId };
}

/** A swipe on no known card: UNKNOWN_SHOPPER, with an id derived from the request (retries get the same body). */
function unknownCard(swipe: ProcessorSwipe): AuthorizeResult {
  return {
    reason: 'UNKNOWN_SHOPPER',
    authorizationId: `auth_card_${sha256Hex(`${swipe.processor}\n${swipe.requestId}`).slice(0, 28)}`,
    tripId: '',
    amountCents: swipe.amountCents,
    remainingCents: 0,
    mode: 'normal',
    replayed: false,
  };
}

/**
 * Records the UNKNOWN_SHOPPER answer in Postgres (through the card partition's WAL), within the
 * per-partition cap. Best effort: the answer stands whatever Redis does here, and what is not
 * recorded is counted dropped (docs/processors.md "Swipes on unknown cards").
 */
async function recordUnknown(
  deps: ProcessorCoreDeps,
  swipe: ProcessorSwipe,
  status: 'unknown' | 'retired',
  result: AuthorizeResult,
  nowMs: number,
): Promise<void> {
  const { keys, scripts, metrics, guard } = deps;
  const processor = swipe.processor;
  metrics.unknownCardSwipes.inc({ processor });
  // Under the decision's deadline and breaker: a slow Redis must not make the decline late.
  const call = () =>
    recordUnknownCardSwipe(
      { keys, scripts },
      {
        processor,
        cardId: swipe.cardId,
        cardStatus: status,
        requestId: swipe.requestId,
        authorizationRef: swipe.authorizationRef,
        authorizationId: result.authorizationId,
        amountCents: swipe.amountCents,
        currency: swipe.currency,
        merchantName: swipe.merchant.name,
        merchantMcc: swipe.merchant.mcc,
        merchantPostal: swipe.merchant.postal,
        merchantNetworkId: swipe.merchant.networkId,
        nowMs,
      },
      deps.unknownCardRecordsPerMinute,
    );
  try {
    const outcome = await (guard === undefined ? call() : guard.run(call));
    if (outcome === 'dropped') metrics.unknownCardSwipesDropped.inc({ processor, cause: 'cap' });
  } catch (err) {
    metrics.redisErrors.inc({ kind: redisErrorKind(err) });
    metrics.unknownCardSwipesDropped.inc({ processor, cause: 'redis' });
  }
}

export function createProcessorCore(deps: ProcessorCoreDeps) {
  const { keys, scripts, metrics, fallback, guard, decide } = deps;
  const knownCards = new Map<string, string>();

  async function storageFailed(
    swipe: ProcessorSwipe,
    nowMs: number,
    err: unknown,
    forwardedId: string | undefined,
  ): Promise<ProcessorDecision> {
    metrics.redisErrors.inc({ kind: redisErrorKind(err) });
    const cardKey = `${swipe.processor}:${swipe.cardId}`;
    const shopperId = knownCards.get(cardKey);
    const authorizationId = forwardedId ?? newAuthorizationId(nowMs);
    if (shopperId === undefined) {
      // Whose card it is cannot be known without Redis: the policy cannot cap it per shopper
      // nor replay it into a trip, so it is refused (docs/processors.md, "Fail-open").
      const request = toSwipeRequest(swipe, '');
      return { result: storageFallbackAnswer(request, authorizationId, false), shopperId: undefined };
    }
    const request = toSwipeRequest(swipe, shopperId);
    return { result: await fallback.decide(request, authorizationId, nowMs, err), shopperId };
  }

  async function decideSwipe(
    swipe: ProcessorSwipe,
    nowMs: number,
    span: SpanLike,
    unreachable?: RegionUnreachable,
    /** A forwarded swipe's id (Request.regionAuthorizationId): a new decision here takes it. */
    forwardedId?: string,
  ): Promise<ProcessorDecision> {
    const cardKey = `${swipe.processor}:${swipe.cardId}`;
    let card: CardLookup;
    try {
      const call = () => lookupCard({ keys, scripts }, swipe.processor, swipe.cardId);
      card = await (guard === undefined ? call() : guard.run(call));
    } catch (err) {
      // This pod is the slow part, not Redis: no decision, never fail open (§1 503).
      if (err instanceof OverloadedError) return { result: overloadedAnswer(), shopperId: undefined };
      return storageFailed(swipe, nowMs, err, forwardedId);
    }
    if (card.status === 'not_ready')
      return storageFailed(swipe, nowMs, new PartitionNotReadyError(), forwardedId);
    if (card.status !== 'active') {
      knownCards.delete(cardKey);
      if (unreachable !== undefined)
        return homeUnreachable(fallback, swipe, nowMs, unreachable, unreachable.shopperId);
      const result = unknownCard(swipe);
      // With peer regions this answer may yet be forwarded (src/regions/routing.ts): nothing is
      // recorded here, as authorizeSwipe records nothing for "no trip here" (docs/regions.md).
      if (!deps.regionPeers) await recordUnknown(deps, swipe, card.status, result, nowMs);
      return { result, shopperId: undefined };
    }
    if (knownCards.get(cardKey) !== card.shopperId) {
      if (knownCards.size >= KNOWN_CARDS_MAX) knownCards.clear();
      knownCards.set(cardKey, card.shopperId);
    }
    const request = toSwipeRequest(swipe, card.shopperId);
    const result = await decide(request, '', nowMs, span, forwardedId);
    if (unreachable !== undefined && result.reason === 'UNKNOWN_SHOPPER')
      return homeUnreachable(fallback, swipe, nowMs, unreachable, card.shopperId);
    return { result, shopperId: card.shopperId };
  }

  return { decideSwipe };
}

export type ProcessorCore = ReturnType<typeof createProcessorCore>;
