// Entry points wired by src/cli.ts: persist | hydrate | migrate, and the
// api's boot-time hydrate check (ensureHydrated).
import type { Logger } from 'pino';
import { startMetricsServer } from '../observability/metricsServer.js';
import type { Config } from '../config/config.js';
import { runMigrations } from '../db/migrate.js';
import { createOrm, knexOf, type Orm } from '../db/orm.js';
import { HOLD_SWEEP_INTERVAL_MS, HoldExpirySweeper } from '../ledger/holdExpiry.js';
import { createMetrics, type Metrics } from '../observability/metrics.js';
import { connectRedis, createRedisClient, type RedisClient } from '../redis/client.js';
import { Keys } from '../redis/keys.js';
import { ScriptRunner } from '../redis/scripts.js';
import { Persister, type PersisterDeps } from './consumer.js';
import { hydrateMissing } from './hydrate.js';
import {
  PRUNE_BATCH_ROWS,
  pruneBatchesFor,
  pruneUnknownCardSwipes,
  RETENTION_INTERVAL_MS,
} from './unknownCardRetention.js';

/** Postgres connections beyond the batch writers (PERSISTER_WRITERS): dead letters and hydrate. */
const PERSISTER_POOL_SPARE = 2;
/** How often a running persister looks for partitions whose Redis state was lost. */
const HYDRATE_CHECK_INTERVAL_MS = 5_000;

function waitForSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals) => {
      process.off('SIGTERM', on);
      process.off('SIGINT', on);
      resolve(sig);
    };
    process.on('SIGTERM', on);
    process.on('SIGINT', on);
  });
}

/**
 * Test-only fault injection (NODE_ENV=test): PERSISTER_TEST_CRASH=<point>:<probability>
 * SIGKILLs this process at that point of a batch (beforeCommit, afterCommit, afterAck).
 */
function crashHook(config: Config): PersisterDeps['hook'] {
  const spec = process.env.PERSISTER_TEST_CRASH;
  if (config.env !== 'test' || spec === undefined || spec === '') return undefined;
  const [point, probability] = spec.split(':');
  const p = Number(probability ?? '1');
  return (at) => {
    if (at === point && Math.random() < p) process.kill(process.pid, 'SIGKILL');
  };
}

export interface RunningPersister {
  readonly persister: Persister;
  stop(): Promise<void>;
}

/**
 * Starts the persister in this process (the persist command, and the dev
 * command next to the api). Runs migrations first (advisory-locked, a no-op
 * when up to date). Stop finishes the current batch, then releases leases.
 */
export async function startPersister(
  config: Config,
  logger: Logger,
  metrics: Metrics,
): Promise<RunningPersister> {
  const { orm, streamClient, controlClient } = await connectPersisterStores(config, logger);
  const persister = new Persister({
    config,
    logger,
    metrics,
    orm,
    streamClient,
    controlClient,
    hook: crashHook(config),
  });
  await persister.start();

  // Redis lost data while we run (restart without persistence): rebuild the
  // partitions whose meta vanished, from what is committed.
  const hydrateCheck = repeatEvery(HYDRATE_CHECK_INTERVAL_MS, logger, 'hydrate check failed', () =>
    hydrateMissing({ config, client: controlClient, logger, orm: async () => orm }),
  );
  // Hold expiry: approved, never cleared holds older than HOLD_EXPIRY_S, on the partitions this process leases.
  const sweeper = new HoldExpirySweeper({
    config,
    keys: new Keys(config.redisPrefix, config.partitions),
    scripts: new ScriptRunner(controlClient, metrics, undefined),
    knex: knexOf(orm),
    logger,
    partitions: () => persister.leases.owned(),
  });
  const holdSweep = repeatEvery(HOLD_SWEEP_INTERVAL_MS, logger, 'hold expiry sweep failed', () =>
    sweeper.tick(),
  );

  const retention = repeatEvery(RETENTION_INTERVAL_MS, logger, 'unknown-card retention failed', () =>
    pruneExpiredUnknownCardSwipes(config, orm, logger),
  );

  logger.info({ consumer: persister.consumer, partitions: config.partitions }, 'persister started');
  return {
    persister,
    async stop() {
      await Promise.all([hydrateCheck.stop(), holdSweep.stop(), retention.stop()]);
      await persister.stop();
      streamClient.disconnect();
      controlClient.disconnect();
      await orm.close(true);
      logger.info({ committed: persister.committedEvents }, 'persister stopped');
    },
  };
}

/** Postgres (migrated) and the two Redis connections: the stream reader's blocking one and control. */
async function connectPersisterStores(config: Config, logger: Logger) {
  const orm = await createOrm({
    databaseUrl: config.databaseUrl,
    poolMax: config.persisterWriters + PERSISTER_POOL_SPARE,
  });
  const streamClient = createRedisClient(config, {
    name: 'persister-stream',
    commandTimeoutMs: config.persisterBlockMs + 10_000,
  });
  const controlClient = createRedisClient(config, { name: 'persister-control', commandTimeoutMs: 10_000 });
  try {
    await runMigrations(orm, { contract: false, logger });
    await connectRedis(streamClient);
    await connectRedis(controlClient);
  } catch (err) {
    streamClient.disconnect();
    controlClient.disconnect();
    await orm.close(true);
    throw err;
  }
  return { orm, streamClient, controlClient };
}

/** Unknown-card swipe records older than UNKNOWN_CARD_RETENTION_DAYS, deleted in bounded batches. */
async function pruneExpiredUnknownCardSwipes(config: Config, orm: Orm, logger: Logger): Promise<void> {
  const cutoffMs = Date.now() - config.unknownCardRetentionDays * 86_400_000;
  const batches = pruneBatchesFor(config.processors.unknownCardRecordsPerMinute, config.partitions);
  const deleted = await pruneUnknownCardSwipes(knexOf(orm), cutoffMs, PRUNE_BATCH_ROWS, batches);
  if (deleted > 0) logger.info({ deleted, cutoffMs }, 'unknown-card swipe records pruned');
}

/**
 * Runs `task` every `intervalMs`, one run at a time (a tick while one runs is skipped); a failed
 * run is logged and the next tick tries again. stop() ends the ticks and waits for a run in progress.
 */
function repeatEvery(
  intervalMs: number,
  logger: Logger,
  failure: string,
  task: () => Promise<unknown>,
): { stop(): Promise<void> } {
  let running: Promise<unknown> | undefined;
  const timer = setInterval(() => {
    if (running !== undefined) return;
    running = task()
      .catch((err: unknown) =>
        logger.warn({ err: err instanceof Error ? err.message : String(err) }, failure),
      )
      .finally(() => {
        running = undefined;
      });
  }, intervalMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}

/** `persist`: runs until SIGTERM/SIGINT, then finishes the current batch and returns. */
export async function persistCommand(config: Config, logger: Logger): Promise<void> {
  const metrics = createMetrics();
  const running = await startPersister(config, logger, metrics);
  const server = await startMetricsServer(config.host, config.metricsPort, metrics, () => true);
  logger.info({ metricsPort: server.port }, 'persister metrics listening');
  const sig = await waitForSignal();
  logger.info({ signal: sig }, 'persister stopping');
  await running.stop();
  await server.close();
}

/**
 * `migrate [--contract]`: applies pending migrations and returns. Without --contract, stops
 * before the first contract migration (the previous release may still be serving).
 */
export async function migrateCommand(config: Config, logger: Logger, contract: boolean): Promise<void> {
  // No statement timeout: a backfill or an index build on a big table takes what it takes (the
  // Job's activeDeadlineSeconds bounds the run).
  const orm = await createOrm({ databaseUrl: config.databaseUrl, poolMax: 2, statementTimeoutMs: 0 });
  try {
    await runMigrations(orm, { contract, logger, strict: true });
  } finally {
    await orm.close(true);
  }
}

async function withClient<T>(config: Config, fn: (client: RedisClient) => Promise<T>): Promise<T> {
  const client = createRedisClient(config, { name: 'hydrate', commandTimeoutMs: 30_000 });
  try {
    await connectRedis(client);
    return await fn(client);
  } finally {
    client.disconnect();
  }
}

/**
 * `hydrate`: rebuilds every partition whose `meta` is missing (HYDRATE_FORCE=true
 * or `force`: every partition; writes never overwrite existing keys).
 */
export async function hydrateCommand(
  config: Config,
  logger: Logger,
  options: { force?: boolean } = {},
): Promise<void> {
  const force = options.force ?? process.env.HYDRATE_FORCE === 'true';
  const r = await hydrateOnce(config, logger, { force });
  logger.info(r, 'hydrate finished');
}

/**
 * Called by the api at boot, before it serves: partitions without `meta` are
 * rebuilt from Postgres and marked; on a fresh, empty system they are only
 * marked (initialized_ms). Postgres is opened only when some partition needs it.
 */
export async function ensureHydrated(
  config: Config,
  logger: Logger,
): Promise<{ hydratedPartitions: number }> {
  const r = await hydrateOnce(config, logger, {});
  return { hydratedPartitions: r.hydratedPartitions };
}

/** One hydrateMissing pass on its own Redis connection; Postgres opened only if a partition needs it. */
function hydrateOnce(config: Config, logger: Logger, options: { force?: boolean }) {
  return withClient(config, async (client) => {
    let orm: Orm | undefined;
    try {
      return await hydrateMissing(
        {
          config,
          client,
          logger,
          orm: async () => {
            orm = await createOrm({ databaseUrl: config.databaseUrl, poolMax: 2 });
            return orm;
          },
        },
        options,
      );
    } finally {
      await orm?.close(true);
    }
  });
}
