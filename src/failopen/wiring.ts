// Builds the fail-open parts of one api process from config: breaker, journal,
// policy, replayer (docs/failopen.md). Kept here so src/app/api.ts only calls
// createFailOpen() and stop().
import { basename, dirname, join } from 'node:path';
import type { Config } from '../config/config.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { RedisClient } from '../redis/client.js';
import type { Keys } from '../redis/keys.js';
import type { ScriptRunner } from '../redis/scripts.js';
import {
  BREAKER_DEFAULTS,
  BREAKER_STATE_VALUE,
  type BreakerState,
  CircuitBreaker,
  type LoadSignals,
} from './breaker.js';
import { type FailOpenEntry, Journal } from './journal.js';
import { FailOpenPolicy, limitsFrom } from './policy.js';
import { type ReplayResult, Replayer } from './replayer.js';
import { StandIn } from './standIn.js';

/** Default of FAILOPEN_JOURNAL_PATH (config.ts). */
const DEFAULT_JOURNAL_PATH = '.journal/failopen.jsonl';

/**
 * The journal file of this process. In tests many in-process apis (each with
 * its own key prefix) run side by side with the default path: each gets its
 * own file, named after its prefix. Elsewhere the path is used as configured
 * (one journal per pod: mount a volume that survives a container restart).
 */
export function journalPathFor(config: Config): string {
  const path = config.failopenJournalPath;
  if (config.env !== 'test' || path !== DEFAULT_JOURNAL_PATH) return path;
  return join(dirname(path), `${basename(path, '.jsonl')}-${config.redisPrefix}.jsonl`);
}

/**
 * OVERLOAD_WAIT_MS, clamped so that deadline + wait stays inside the
 * processor's deadline (an answer after it is worth nothing).
 */
export function overloadWaitMsOf(config: Config): number {
  return Math.max(
    0,
    Math.min(config.overloadWaitMs, config.processorDeadlineMs - 2 * config.decisionTimeoutMs),
  );
}

export interface FailOpenDeps {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly keys: Keys;
  /** The request-path client: the breaker's probe PINGs it. */
  readonly decisionRedis: RedisClient;
  /** A background client's runner for the replay script. */
  readonly replayScripts: ScriptRunner;
  /** False when a caller supplied its own StorageFallback: only the breaker is built. */
  readonly withPolicy: boolean;
  /** Loop stall and Redis progress: the deadline measures the Redis call itself (breaker.ts). */
  readonly load?: LoadSignals;
  /** Replays an approval given for another region's shopper in that home region (src/regions/). */
  readonly sendHome?: (entry: FailOpenEntry) => Promise<ReplayResult>;
}

export interface FailOpen {
  readonly breaker: CircuitBreaker;
  /** Stand-in knowledge the policy uses; the request path and trip API feed it. */
  readonly standIn: StandIn | undefined;
  readonly policy: FailOpenPolicy | undefined;
  readonly journal: Journal | undefined;
  readonly replayer: Replayer | undefined;
  /** Fields for /readyz. */
  readiness(): { circuit: BreakerState; failopen_journal_pending: number };
  /** Stops probing and replaying, then flushes and closes the journal. */
  stop(): Promise<void>;
}

export function createFailOpen(deps: FailOpenDeps): FailOpen {
  const { config, logger, metrics } = deps;
  let policy: FailOpenPolicy | undefined;
  const breaker = new CircuitBreaker({
    deadlineMs: config.decisionTimeoutMs,
    ...BREAKER_DEFAULTS,
    ...(deps.load === undefined ? {} : { load: deps.load, overloadWaitMs: overloadWaitMsOf(config) }),
    probe: () => deps.decisionRedis.ping(),
    onStateChange: (state, previous) => {
      metrics.circuitState.set(BREAKER_STATE_VALUE[state]);
      logger.warn({ circuit: state, previous }, 'redis circuit breaker state change');
      if (state === 'closed') policy?.forgetDeclines();
    },
  });
  metrics.circuitState.set(0);
  if (!deps.withPolicy) {
    return {
      breaker,
      policy,
      standIn: undefined,
      journal: undefined,
      replayer: undefined,
      readiness: () => ({ circuit: breaker.state, failopen_journal_pending: 0 }),
      async stop() {
        breaker.stop();
      },
    };
  }

  const journal = Journal.open({
    path: journalPathFor(config),
    bytesMax: config.failopenJournalBytesMax,
    windowMs: config.failopenWindowS * 1000,
  });
  const stats = journal.stats();
  if (stats.pending > 0 || stats.corruptLines > 0) {
    logger.warn({ journal: journal.path, ...stats }, 'fail-open journal has approvals to replay');
  }
  const standIn = new StandIn({
    shoppersMax: config.standinShoppersMax,
    ttlMs: config.standinTtlS * 1000,
    unknownMeansNoTrip: config.regions.peers.size === 0,
  });
  policy = new FailOpenPolicy(limitsFrom(config), journal, metrics, logger, standIn);
  const replayer = new Replayer({
    config,
    keys: deps.keys,
    scripts: deps.replayScripts,
    journal,
    policy,
    metrics,
    logger,
    healthy: () => breaker.state === 'closed',
    ...(deps.sendHome === undefined ? {} : { sendHome: deps.sendHome }),
  });
  replayer.start();
  return {
    breaker,
    policy,
    standIn,
    journal,
    replayer,
    readiness: () => ({ circuit: breaker.state, failopen_journal_pending: journal.pendingCount() }),
    async stop() {
      breaker.stop();
      await replayer.stop();
      await journal.close();
    },
  };
}
