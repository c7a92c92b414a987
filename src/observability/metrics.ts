// Prometheus metrics. Names are part of the contract with dashboards and
// alerts (docs: ../shared/DESIGN.md, Observability). Labels have bounded
// cardinality: never a shopper, trip or authorization id.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { PROCESSORS } from '../processors/common/swipe.js';

/** 100 µs .. 1 s: resolves sub-millisecond decisions and still sees the processor deadline. */
export const LATENCY_BUCKETS_S = [
  0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
];

/** Label values of the alerted counters, exported at 0 from the start (zeroAlertedCounters). */
export const FAILOPEN_DECISIONS = ['approved', 'declined'] as const;
/** The kinds redisErrorKind (src/failopen/breaker.ts) returns. */
export const REDIS_ERROR_KINDS = ['timeout', 'breaker_open', 'connection', 'script', 'not_hydrated'] as const;
export type RedisErrorKind = (typeof REDIS_ERROR_KINDS)[number];
/** Why an unknown-card swipe was not recorded (src/processors/common/core.ts). */
export const UNKNOWN_CARD_DROP_CAUSES = ['cap', 'redis'] as const;

export function createMetrics(options: { defaultMetrics: boolean } = { defaultMetrics: true }) {
  const registry = new Registry();
  if (options.defaultMetrics) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const metrics = buildMetrics(registers);
  zeroAlertedCounters(metrics);
  return { registry, ...metrics };
}

/**
 * A labelled counter has no series until its first inc(), so an alert on
 * `increase(x[5m]) > 0` sees a pod's first increments as the series' start
 * (0) and misses them. Every label value an alert reads is exported at 0 from
 * boot, so the first fail-open decision is already an increase.
 */
function zeroAlertedCounters(m: ReturnType<typeof buildMetrics>): void {
  for (const decision of FAILOPEN_DECISIONS) m.failopen.inc({ decision }, 0);
  for (const kind of REDIS_ERROR_KINDS) m.redisErrors.inc({ kind }, 0);
  for (const processor of PROCESSORS)
    for (const cause of UNKNOWN_CARD_DROP_CAUSES) m.unknownCardSwipesDropped.inc({ processor, cause }, 0);
}

function buildMetrics(registers: Registry[]) {
  return {
    ...decisionMetrics(registers),
    ...redisMetrics(registers),
    ...httpMetrics(registers),
    ...persisterMetrics(registers),
    ...regionMetrics(registers),
  };
}

/** Decisions, their latency, and the fail-open policy's share of them. */
function decisionMetrics(registers: Registry[]) {
  return {
    decisions: new Counter({
      name: 'swipe_decisions_total',
      help: 'Swipe decisions by outcome, decline reason and mode (normal, fail_open, replay).',
      labelNames: ['decision', 'reason', 'mode'] as const,
      registers,
    }),
    decisionDuration: new Histogram({
      name: 'swipe_decision_duration_seconds',
      help: 'Time from a complete webhook body to the response being written, in seconds.',
      buckets: LATENCY_BUCKETS_S,
      registers,
    }),
    failopen: new Counter({
      name: 'swipe_failopen_total',
      help: 'Swipes decided by the fail-open policy while Redis was degraded.',
      labelNames: ['decision'] as const,
      registers,
    }),
    unknownCardSwipes: new Counter({
      name: 'processor_unknown_card_swipes_total',
      help: 'Processor swipes on an unknown or retired card (answered UNKNOWN_SHOPPER), retries included.',
      labelNames: ['processor'] as const,
      registers,
    }),
    unknownCardSwipesDropped: new Counter({
      name: 'processor_unknown_card_swipes_dropped_total',
      help: 'Unknown-card swipes not recorded in Postgres: over UNKNOWN_CARD_RECORDS_PER_MINUTE, or Redis failed.',
      labelNames: ['processor', 'cause'] as const,
      registers,
    }),
    failopenJournalPending: new Gauge({
      name: 'swipe_failopen_journal_pending',
      help: 'Fail-open journal entries not yet replayed into Redis.',
      registers,
    }),
  };
}

/** Request-path Redis: script latency, failures by kind, the circuit breaker. */
function redisMetrics(registers: Registry[]) {
  return {
    redisCommandDuration: new Histogram({
      name: 'redis_command_duration_seconds',
      help: 'Duration of Redis script calls, in seconds.',
      labelNames: ['script'] as const,
      buckets: LATENCY_BUCKETS_S,
      registers,
    }),
    redisErrors: new Counter({
      name: 'redis_errors_total',
      help: 'Redis failures on the request path by kind (timeout, connection, script, breaker_open).',
      labelNames: ['kind'] as const,
      registers,
    }),
    circuitState: new Gauge({
      name: 'redis_circuit_state',
      help: 'Circuit breaker state for request-path Redis calls: 0 closed, 1 half-open, 2 open.',
      registers,
    }),
  };
}

/** Responses by route and status, and requests shed by admission control. */
function httpMetrics(registers: Registry[]) {
  return {
    httpRequests: new Counter({
      name: 'http_requests_total',
      help: 'HTTP responses by route template and status code.',
      labelNames: ['route', 'status'] as const,
      registers,
    }),
    httpShed: new Counter({
      name: 'http_shed_total',
      help: 'Requests refused with 503 overloaded because this pod was over a limit (inflight, bytes, lag, redis_wait).',
      labelNames: ['cause'] as const,
      registers,
    }),
  };
}

/** The WAL behind Postgres and the persister writing it. */
function persisterMetrics(registers: Registry[]) {
  return {
    walPending: new Gauge({
      name: 'wal_pending_entries',
      help: 'WAL stream entries not yet committed to Postgres, per partition.',
      labelNames: ['partition'] as const,
      registers,
    }),
    persisterEvents: new Counter({
      name: 'persister_events_total',
      help: 'WAL events written to Postgres by event type.',
      labelNames: ['type'] as const,
      registers,
    }),
    persisterBatchDuration: new Histogram({
      name: 'persister_batch_duration_seconds',
      help: 'Time to write one batch of WAL events to Postgres, in seconds.',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    persisterDeadLetters: new Counter({
      name: 'persister_dead_letters_total',
      help: 'WAL events moved to the dead-letter path after too many failed deliveries.',
      registers,
    }),
  };
}

/** Outcomes of one forward to a home region (docs/regions.md). */
export const REGION_FORWARD_OUTCOMES = ['answered', 'timeout', 'error', 'not_home', 'refused'] as const;
export type RegionForwardOutcome = (typeof REGION_FORWARD_OUTCOMES)[number];
/** Outcomes of one fail-open approval sent to its home region's replay endpoint. */
export const REGION_REPLAY_OUTCOMES = ['applied', 'error'] as const;

/** Forwarding between regions (CONTRACT §8); peers' series start at 0 (zeroRegionSeries). */
function regionMetrics(registers: Registry[]) {
  return {
    regionForward: new Counter({
      name: 'region_forward_total',
      help: 'Requests forwarded to a home region, by peer and outcome (answered, timeout, error, not_home, refused).',
      labelNames: ['peer', 'outcome'] as const,
      registers,
    }),
    regionForwardDuration: new Histogram({
      name: 'region_forward_duration_seconds',
      help: 'Time from sending a forwarded request to its home region to its answer (or giving up), seconds.',
      labelNames: ['peer'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2],
      registers,
    }),
    regionPeerUp: new Gauge({
      name: 'region_peer_up',
      help: '1 when the last forward or probe to this peer region got an answer, else 0.',
      labelNames: ['peer'] as const,
      registers,
    }),
    regionDirectoryEntries: new Gauge({
      name: 'region_directory_entries',
      help: 'Shoppers and cards this pod knows to live in another region (directory cache size).',
      registers,
    }),
    regionFailopenReplays: new Counter({
      name: 'region_failopen_replays_total',
      help: "Fail-open approvals given for another region's shopper, sent to that home region's replay endpoint, by peer and outcome.",
      labelNames: ['peer', 'outcome'] as const,
      registers,
    }),
  };
}

/** Every region series of every configured peer exported at 0 from startup (alerts see 0, not absence). */
export function zeroRegionSeries(metrics: Metrics, peers: Iterable<string>): void {
  metrics.regionDirectoryEntries.set(0);
  for (const peer of peers) {
    for (const outcome of REGION_FORWARD_OUTCOMES) metrics.regionForward.inc({ peer, outcome }, 0);
    for (const outcome of REGION_REPLAY_OUTCOMES) metrics.regionFailopenReplays.inc({ peer, outcome }, 0);
    metrics.regionForwardDuration.zero({ peer });
    metrics.regionPeerUp.set({ peer }, 1);
  }
}

export type Metrics = ReturnType<typeof createMetrics>;
