// Routes of CONTRACT §7: the card registry (trip API bearer) and each processor's
// decision and events endpoints, in front of the one decision core.
import type { Config } from '../config/config.js';
import type { Decide, RedisGuard, StorageFallback } from '../decisions/authorize.js';
import type { Route } from '../http/server.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Tracing } from '../observability/tracing.js';
import type { Keys } from '../redis/keys.js';
import type { ScriptRunner } from '../redis/scripts.js';
import { createCardHandlers } from '../cards/registry.js';
import { createProcessorCore } from './common/core.js';
import { createEventApplier } from './common/events.js';
import { createDecisionHandler } from './common/route.js';
import { createEventsHandler, parseLithicEvents, parseMarqetaEvents, parseStripeEvents } from './events.js';
import { createStandardWebhookCheck, LITHIC_HEADERS, lithicAsaAdapter } from './lithic/asa.js';
import { createBasicCheck } from './common/basicAuth.js';
import { marqetaJitAdapter } from './marqeta/jit.js';
import {
  STRIPE_HEADERS,
  stripeAuthorizationAdapter,
  verifyStripeSignature,
} from './stripe/authorizations.js';
import type { Handler } from '../http/server.js';

export interface ProcessorRouteDeps {
  readonly config: Config;
  readonly keys: Keys;
  readonly decisionScripts: ScriptRunner;
  readonly eventScripts: ScriptRunner;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly tracing: Tracing;
  readonly fallback: StorageFallback;
  readonly guard?: RedisGuard;
  readonly decide: Decide;
  readonly authorized: (authorizationHeader: string | undefined) => boolean;
  readonly onLate?: (shopperId: string, authorizationId: string, elapsedMs: number) => void;
  /** Wraps trip-API-like handlers: Redis trouble is 503 (src/app/api.ts storageGuard). */
  readonly storageGuard: (h: Handler) => Handler;
  readonly now?: () => number;
}

/** URL prefixes these routes own (for the 404/405 fallback). */
export const PROCESSOR_PREFIXES = ['/v1/processors/'] as const;

export function processorRoutes(d: ProcessorRouteDeps): Route[] {
  const pc = d.config.processors;
  const core = createProcessorCore({
    keys: d.keys,
    scripts: d.decisionScripts,
    metrics: d.metrics,
    fallback: d.fallback,
    ...(d.guard === undefined ? {} : { guard: d.guard }),
    decide: d.decide,
    unknownCardRecordsPerMinute: pc.unknownCardRecordsPerMinute,
    regionPeers: d.config.regions.peers.size > 0,
  });
  const routeDeps = {
    core,
    metrics: d.metrics,
    tracing: d.tracing,
    regionsLinked: d.config.regions.peers.size > 0,
    ...(d.now === undefined ? {} : { now: d.now }),
    ...(d.onLate === undefined ? {} : { onLate: d.onLate }),
  };
  const applier = createEventApplier({
    config: d.config,
    keys: d.keys,
    scripts: d.eventScripts,
    logger: d.logger,
    ...(d.now === undefined ? {} : { now: d.now }),
  });
  const post = processorPost(pc);
  return [
    ...cardRoutes(d),
    post(
      '/v1/processors/stripe/authorizations',
      createDecisionHandler(routeDeps, stripeAuthorizationAdapter(pc)),
      STRIPE_HEADERS,
    ),
    post('/v1/processors/marqeta/jit', createDecisionHandler(routeDeps, marqetaJitAdapter(pc))),
    post(
      '/v1/processors/lithic/asa',
      createDecisionHandler(routeDeps, lithicAsaAdapter(pc, d.config.processorDeadlineMs)),
      LITHIC_HEADERS,
    ),
    ...eventRoutes(d, applier, post),
  ];
}

/** A POST route of one processor: JSON body within the configured size. */
function processorPost(pc: Config['processors']) {
  const body = { bodyBytesMax: pc.processorBodyBytesMax, requireJson: true } as const;
  const post = (pattern: string, handler: Handler, headers?: readonly string[]): Route => ({
    method: 'post',
    pattern,
    label: pattern,
    paramCount: 0,
    ...body,
    handler,
    ...(headers === undefined ? {} : { headers }),
  });
  return post;
}

/** The card registry: PUT and DELETE of a shopper's processor card. */
function cardRoutes(d: ProcessorRouteDeps): Route[] {
  const cards = createCardHandlers({ keys: d.keys, scripts: d.eventScripts, authorized: d.authorized });
  const cardPath = '/v1/shoppers/:shopper/cards/:processor/:card';
  const cardLabel = '/v1/shoppers/:shopper_id/cards/:processor/:card_id';
  return [
    {
      method: 'put',
      pattern: cardPath,
      label: cardLabel,
      paramCount: 3,
      bodyBytesMax: 1024,
      requireJson: false,
      handler: d.storageGuard(cards.put),
    },
    {
      method: 'del',
      pattern: cardPath,
      label: cardLabel,
      paramCount: 3,
      bodyBytesMax: 0,
      requireJson: false,
      handler: d.storageGuard(cards.remove),
    },
  ];
}

/** Each processor's events endpoint, all feeding the one event applier. */
function eventRoutes(
  d: ProcessorRouteDeps,
  applier: ReturnType<typeof createEventApplier>,
  post: ReturnType<typeof processorPost>,
): Route[] {
  const pc = d.config.processors;
  const lithicCheck = createStandardWebhookCheck(pc.lithicWebhookSecrets);
  const basic = createBasicCheck(pc.marqetaBasicAuth);
  return [
    post(
      '/v1/processors/stripe/events',
      createEventsHandler({
        applier,
        logger: d.logger,
        authenticate: (req, nowMs) =>
          verifyStripeSignature(pc.stripeWebhookSecrets, req.headers.extra?.[0] ?? '', req.body, nowMs),
        parse: parseStripeEvents,
      }),
      STRIPE_HEADERS,
    ),
    post(
      '/v1/processors/marqeta/webhooks',
      createEventsHandler({
        applier,
        logger: d.logger,
        authenticate: (req) => basic(req.headers.authorization),
        parse: parseMarqetaEvents,
      }),
    ),
    post(
      '/v1/processors/lithic/events',
      createEventsHandler({
        applier,
        logger: d.logger,
        authenticate: (req) => lithicCheck(req),
        parse: parseLithicEvents,
      }),
      LITHIC_HEADERS,
    ),
  ];
}
