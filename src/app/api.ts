// The api process: routes of CONTRACT §1-§5 on uWebSockets.js, metrics on
// their own port. Never touches Postgres on the request path.
import { Cluster } from 'ioredis';
import { createBearerCheck } from '../auth/bearer.js';
import type { Config } from '../config/config.js';
import {
  createAuthorizeHandler,
  createDecider,
  FAIL_CLOSED,
  type StorageFallback,
} from '../decisions/authorize.js';
import { createClearingHandler } from '../decisions/clear.js';
import { createLateFlagger } from '../decisions/late.js';
import { createReversalHandler } from '../decisions/reverse.js';
import { createFailOpen, type FailOpen } from '../failopen/wiring.js';
import { signaturePlausible } from '../auth/signature.js';
import { errorResponse, errorWith, type HttpResponse, jsonResponse } from '../http/errors.js';
import { LoadMonitor } from '../http/loadMonitor.js';
import {
  assertNativeUws,
  type Handler,
  HttpServer,
  type RequestHeaders,
  type Route,
} from '../http/server.js';
import type { Logger } from '../observability/logger.js';
import { createMetrics, type Metrics } from '../observability/metrics.js';
import { initTracing, type Tracing } from '../observability/tracing.js';
import { connectRedis, createRedisClient, type RedisClient } from '../redis/client.js';
import { Keys } from '../redis/keys.js';
import { warmUp } from '../redis/warmup.js';
import { ScriptRunner } from '../redis/scripts.js';
import { createTripHandlers } from '../trips/handlers.js';
import { PROCESSOR_PREFIXES, processorRoutes } from '../processors/routes.js';
import { startMetricsServer } from '../observability/metricsServer.js';
import { createRegions, type Regions } from '../regions/regions.js';

export interface RunningApi {
  readonly port: number;
  readonly metricsPort: number;
  readonly metrics: Metrics;
  /** Drains in-flight requests (bounded by SHUTDOWN_GRACE_MS), then closes everything. */
  stop(): Promise<void>;
}

export interface ApiOptions {
  readonly fallback?: StorageFallback;
  readonly tracing?: Tracing;
}

/** Trip API writes are not on the swipe hot path: a longer deadline than decisions. */
const TRIP_API_TIMEOUT_MS = 2000;

/** Redis trouble on the trip API is 503 (retryable), never a 500. */
function storageGuard(logger: Logger, handler: Handler): Handler {
  return async (req) => {
    try {
      return await handler(req);
    } catch (err) {
      logger.warn({ err }, 'trip API storage call failed');
      return errorResponse('storage_unavailable', 'storage is unavailable, retry later');
    }
  };
}

interface Readiness {
  /** Settles when the first warm-up finished or READY_WARMUP_TIMEOUT_MS passed. */
  readonly first: Promise<void>;
  warm(): boolean;
  stop(): void;
}

/** Warm-up at boot, again every READY_RECHECK_MS and on Cluster topology changes; one at a time. */
function startWarmup(clients: readonly RedisClient[], config: Config, logger: Logger): Readiness {
  let warm = false;
  let running: Promise<void> | undefined;
  const run = (): Promise<void> => {
    running ??= warmUp(clients)
      .then((r) => {
        if (r.loaded > 0 || !warm)
          logger.info({ masters: r.masters, scripts_loaded: r.loaded }, 'Redis warm');
        warm = true;
      })
      .catch((err: unknown) => {
        warm = false;
        logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'Redis warm-up failed');
      })
      .finally(() => {
        running = undefined;
      });
    return running;
  };
  let timer: NodeJS.Timeout | undefined;
  const first = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, config.readyWarmupTimeoutMs);
    void run().then(resolve);
  }).finally(() => clearTimeout(timer));
  const recheck = setInterval(() => void run(), config.readyRecheckMs);
  recheck.unref();
  const onTopology = (): void => {
    warm = false; // a new master may lack the scripts: not ready until checked
    void run();
  };
  for (const c of clients) if (c instanceof Cluster) c.on('+node', onTopology);
  return {
    first,
    warm: () => warm,
    stop() {
      clearInterval(recheck);
      for (const c of clients) if (c instanceof Cluster) c.off('+node', onTopology);
    },
  };
}

export async function startApi(
  config: Config,
  logger: Logger,
  options: ApiOptions = {},
): Promise<RunningApi> {
  const binary = assertNativeUws();
  logger.info({ binary: binary.split('/').slice(-1)[0] }, 'uWebSockets.js native binary loaded');
  const metrics = createMetrics();
  const tracing = options.tracing ?? initTracing(process.env, logger);
  const load = new LoadMonitor({
    inflightRequestsMax: config.apiInflightRequestsMax,
    queuedBodyBytesMax: config.apiQueuedBodyBytesMax,
    loopLagMaxMs: config.overloadLoopLagMs,
  });
  load.start();
  const { decisionRedis, tripRedis, clients } = await connectClients(config, logger);

  // Readiness: scripts on every master, connections warm (src/redis/warmup.ts).
  const readiness = startWarmup(clients, config, logger);
  await readiness.first;

  const { failOpen, late, handlers, regions } = wireHandlers({
    config,
    logger,
    metrics,
    tracing,
    load,
    decisionRedis,
    tripRedis,
    options,
  });
  let stopping = false;
  const ready = (): HttpResponse =>
    readiness_(config, decisionRedis, readiness, failOpen.readiness(), stopping);
  const server = buildServer(config, logger, metrics, load, { ...handlers, ready }, regions);

  const port = await server.listen(config.host, config.port);
  const metricsServer = await startMetricsServer(config.host, config.metricsPort, metrics, () => true);
  logger.info({ port, metricsPort: metricsServer.port, partitions: config.partitions }, 'api listening');

  return {
    port,
    metricsPort: metricsServer.port,
    metrics,
    async stop() {
      stopping = true;
      const drained = await server.drain(config.shutdownGraceMs);
      if (!drained) logger.warn('shutdown grace elapsed with requests in flight');
      server.close();
      await late.settled();
      await failOpen.stop(); // after the drain: every fail-open answer given is journaled and flushed
      regions?.stop();
      await metricsServer.close();
      readiness.stop();
      await Promise.all(clients.map((c) => c.quit().catch(() => c.disconnect())));
      load.stop();
      await tracing.shutdown();
    },
  };
}

interface ApiParts {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly tracing: Tracing;
  readonly load: LoadMonitor;
  readonly decisionRedis: RedisClient;
  readonly tripRedis: RedisClient;
  readonly options: ApiOptions;
}

/**
 * The request handlers over the two connections: decisions on their own (deadline-bound)
 * script runner; the trip API, reversals, clearings and fail-open replay on the other.
 */
function wireHandlers(parts: ApiParts): {
  failOpen: FailOpen;
  late: ReturnType<typeof createLateFlagger>;
  handlers: Omit<ApiHandlers, 'ready'>;
  regions: Regions | undefined;
} {
  const { config, logger, metrics, tracing, load, options } = parts;
  const keys = new Keys(config.redisPrefix, config.partitions);
  const decisionScripts = new ScriptRunner(parts.decisionRedis, metrics, tracing, {
    coalesceWrites: config.redisCoalesceWrites,
    onReply: () => load.replied(),
  });
  const tripScripts = new ScriptRunner(parts.tripRedis, metrics, tracing);
  // CONTRACT §8: peers configured = forward "not here" answers to their home region.
  const regions = createRegions({
    config,
    logger,
    metrics,
    keys,
    redis: parts.tripRedis,
    scripts: tripScripts,
  });
  const failOpen = createFailOpen({
    ...(regions === undefined ? {} : { sendHome: regions.sendHome }),
    config,
    logger,
    metrics,
    keys,
    decisionRedis: parts.decisionRedis,
    replayScripts: tripScripts,
    withPolicy: options.fallback === undefined,
    load,
  });
  const standIn = failOpen.standIn === undefined ? {} : { standIn: failOpen.standIn };
  const authorized = createBearerCheck(config.apiTokens);
  const late = createLateFlagger({
    keys,
    scripts: tripScripts,
    logger,
    deadlineMs: config.processorDeadlineMs,
  });
  const authorizeDeps = {
    config,
    keys,
    scripts: decisionScripts,
    metrics,
    logger,
    tracing,
    fallback: options.fallback ?? failOpen.policy ?? FAIL_CLOSED,
    guard: failOpen.breaker,
    onLate: late.flag,
    ...standIn,
  };
  const handlers = {
    authorize: createAuthorizeHandler(authorizeDeps),
    reverse: createReversalHandler({ config, keys, scripts: tripScripts }),
    clear: createClearingHandler({ config, keys, scripts: tripScripts }),
    trips: createTripHandlers({ config, keys, scripts: tripScripts, authorized, ...standIn }),
    // CONTRACT §7: cards and the three processors, in front of the same decision core.
    processors: processorRoutes({
      ...authorizeDeps,
      decisionScripts,
      eventScripts: tripScripts,
      decide: createDecider(authorizeDeps),
      authorized,
      storageGuard: (h) => storageGuard(logger, h),
    }),
  };
  return { failOpen, late, handlers, regions };
}

/** The api's two Redis connections: decisions (deadline-bound) and the trip API and replay. */
async function connectClients(
  config: Config,
  logger: Logger,
): Promise<{ decisionRedis: RedisClient; tripRedis: RedisClient; clients: RedisClient[] }> {
  const decisionRedis = createRedisClient(config, {
    name: 'sa-api-decide',
    // The breaker's deadline (DECISION_TIMEOUT_MS, plus OVERLOAD_WAIT_MS when the
    // pod itself is the slow part) decides; ioredis' own timer is only a
    // backstop, later, so it never fires first on a reply already read.
    commandTimeoutMs: 2 * config.decisionTimeoutMs + config.overloadWaitMs,
  });
  const tripRedis = createRedisClient(config, {
    name: 'sa-api-trips',
    commandTimeoutMs: TRIP_API_TIMEOUT_MS,
  });
  const clients: RedisClient[] = [decisionRedis, tripRedis];
  for (const c of clients)
    c.on('error', (err: Error) => logger.debug({ err: err.message }, 'redis client error'));
  try {
    await Promise.all(clients.map((c) => connectRedis(c)));
  } catch (err) {
    if (!config.failopenEnabled) throw err;
    logger.warn(
      { err: (err as Error).message },
      'Redis unreachable at boot; serving with the fail-open policy',
    );
  }
  return { decisionRedis, tripRedis, clients };
}

/** /readyz (CONTRACT §5): Redis usable and warm, or unusable with fail-open on; never while stopping. */
function readiness_(
  config: Config,
  decisionRedis: RedisClient,
  readiness: { warm(): boolean },
  failOpenState: ReturnType<FailOpen['readiness']>,
  stopping: boolean,
): HttpResponse {
  const state = { redis: decisionRedis.status, warm: readiness.warm(), ...failOpenState };
  const redisOk = decisionRedis.status === 'ready' && state.circuit === 'closed';
  // Redis usable: ready once warm (full speed). Redis unusable: ready only to fail open (CONTRACT §5).
  const ok = !stopping && (redisOk ? state.warm : config.failopenEnabled);
  if (ok) return jsonResponse(200, { status: 'ready', ...state });
  const why = stopping
    ? 'shutting down'
    : redisOk
      ? 'warming up: scripts not yet loaded on every master or connections cold'
      : 'Redis is unusable and fail-open is off';
  return errorWith('not_ready', state, why);
}

interface ApiHandlers {
  readonly authorize: Handler;
  readonly reverse: Handler;
  readonly clear: Handler;
  readonly trips: ReturnType<typeof createTripHandlers>;
  readonly ready: () => HttpResponse;
  readonly processors: ReturnType<typeof processorRoutes>;
}

/** Every route of the api port, with its body and admission rules. */
function buildServer(
  config: Config,
  logger: Logger,
  metrics: Metrics,
  load: LoadMonitor,
  h: ApiHandlers,
  regions: Regions | undefined,
): HttpServer {
  const server = new HttpServer({ logger, metrics, load, bodyReadTimeoutMs: config.apiBodyReadTimeoutMs });
  const routes = [
    ...decisionRoutes(config, logger, h),
    ...tripRoutes(config, logger, h.trips),
    ...h.processors,
  ];
  // Every swipe and trip API route goes through the region seam (src/regions/routing.ts).
  for (const r of routes) server.route(regions === undefined ? r : regions.wrap(r));
  for (const r of [...probeRoutes(h.ready), ...(regions?.routes ?? [])]) server.route(r);
  server.fallback([
    '/v1/authorizations',
    '/v1/shoppers/',
    '/healthz',
    '/readyz',
    '/internal/regions/',
    ...PROCESSOR_PREFIXES,
  ]);
  return server;
}

/** CONTRACT §1-§3: signed webhooks that commit a decision, a reversal or a clearing. */
function decisionRoutes(config: Config, logger: Logger, h: ApiHandlers): Route[] {
  // Forged requests are refused on their headers, before the body is hashed:
  // a flood of them costs a header parse each, not an HMAC over 16 KiB.
  const signedPrecheck = (headers: RequestHeaders): HttpResponse | undefined =>
    signaturePlausible(headers.signature, Math.floor(Date.now() / 1000), config.signatureToleranceS)
      ? undefined
      : errorResponse('invalid_signature');
  const webhook = {
    method: 'post',
    paramCount: 0,
    bodyBytesMax: config.webhookBodyBytesMax,
    requireJson: true,
    precheck: signedPrecheck,
    commitsState: true,
  } as const;
  const at = (pattern: string) => ({ ...webhook, pattern, label: pattern });
  return [
    { ...at('/v1/authorizations'), handler: h.authorize },
    { ...at('/v1/authorizations/reversals'), handler: storageGuard(logger, h.reverse) },
    { ...at('/v1/authorizations/clearings'), handler: storageGuard(logger, h.clear) },
  ];
}

/** CONTRACT §4: the trip API (bearer-authorized inside the handlers). */
function tripRoutes(config: Config, logger: Logger, trips: ApiHandlers['trips']): Route[] {
  const tripBody = { bodyBytesMax: config.tripBodyBytesMax, requireJson: true, commitsState: true } as const;
  const trip = {
    pattern: '/v1/shoppers/:shopper/trips/:trip',
    label: '/v1/shoppers/:shopper_id/trips/:trip_id',
    paramCount: 2,
  } as const;
  return [
    { method: 'put', ...trip, ...tripBody, handler: storageGuard(logger, trips.put) },
    { method: 'get', ...trip, ...NO_BODY, handler: storageGuard(logger, trips.get) },
    {
      method: 'post',
      pattern: `${trip.pattern}/items/:item`,
      label: `${trip.label}/items/:item_id`,
      paramCount: 3,
      ...tripBody,
      handler: storageGuard(logger, trips.updateItem),
    },
    {
      method: 'post',
      pattern: `${trip.pattern}/close`,
      label: `${trip.label}/close`,
      paramCount: 2,
      ...NO_BODY,
      commitsState: true,
      handler: storageGuard(logger, trips.close),
    },
  ];
}

/** CONTRACT §5: health and readiness, never shed by admission control. */
function probeRoutes(ready: () => HttpResponse): Route[] {
  const probe = { method: 'get', paramCount: 0, ...NO_BODY, admission: false } as const;
  return [
    { ...probe, pattern: '/healthz', label: '/healthz', handler: () => jsonResponse(200, { status: 'ok' }) },
    { ...probe, pattern: '/readyz', label: '/readyz', handler: ready },
  ];
}

const NO_BODY = { bodyBytesMax: 0, requireJson: false } as const;
