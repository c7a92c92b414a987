// Ledger tests: a real api (in process, unique Redis prefix), a fresh
// Postgres database and the persister in process, plus the checks every
// ledger test makes (sums to zero per posting and per currency).
import type { Cluster, Redis } from 'ioredis';
import { createMetrics } from '../../src/observability/metrics.js';
import { HoldExpirySweeper } from '../../src/ledger/holdExpiry.js';
import { type RunningPersister, startPersister } from '../../src/persister/commands.js';
import { createRedisClient, connectRedis, type RedisClient } from '../../src/redis/client.js';
import { ScriptRunner } from '../../src/redis/scripts.js';
import { knexOf } from '../../src/db/orm.js';
import { startTestApi, type TestApi } from '../helpers/api.js';
import { testLogger } from '../persister/helpers/log.js';
import { createTestDb, type TestDb } from '../persister/helpers/pg.js';

export interface LedgerEnv {
  readonly t: TestApi;
  readonly db: TestDb;
  readonly control: RedisClient;
  readonly scripts: ScriptRunner;
  /** Stops the in-process persister (WAL entries then wait in Redis). */
  pausePersister(): Promise<void>;
  resumePersister(): Promise<void>;
  sweeper(nowMs: () => number): HoldExpirySweeper;
  /** Waits until every WAL entry written so far is committed to Postgres. */
  persisted(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startLedgerEnv(env: Record<string, string> = {}): Promise<LedgerEnv> {
  const db = await createTestDb();
  const t = await startTestApi({
    DATABASE_URL: db.url,
    PERSISTER_BLOCK_MS: '20',
    PERSISTER_CLAIM_IDLE_MS: '300',
    PERSISTER_LEASE_MS: '3000',
    ...env,
  });
  const logger = testLogger();
  let persister: RunningPersister | undefined = await startPersister(
    t.config,
    logger,
    createMetrics({ defaultMetrics: false }),
  );
  const control = createRedisClient(t.config, { name: 'ledger-test', commandTimeoutMs: 5000 });
  await connectRedis(control);
  const scripts = new ScriptRunner(control, undefined, undefined);

  async function persisted(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const redis = t.redis as Redis | Cluster;
    while (Date.now() < deadline) {
      let done = true;
      for (let p = 0; p < t.config.partitions && done; p++) {
        const key = t.keys.wal(p);
        if ((await redis.exists(key)) === 0) continue;
        const info = (await redis.xinfo('STREAM', key)) as unknown[];
        const last = String(info[info.indexOf('last-generated-id') + 1]);
        const groups = (await redis.xinfo('GROUPS', key)) as unknown[][];
        const g = groups.find((x) => x[x.indexOf('name') + 1] === 'persister');
        if (g === undefined) {
          done = false;
          break;
        }
        const delivered = String(g[g.indexOf('last-delivered-id') + 1]);
        const pending = Number(g[g.indexOf('pending') + 1]);
        if (delivered !== last || pending !== 0) done = false;
      }
      if (done) return;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error('timed out waiting for the persister');
  }

  return {
    t,
    db,
    control,
    scripts,
    async pausePersister() {
      await persister?.stop();
      persister = undefined;
    },
    async resumePersister() {
      if (persister === undefined)
        persister = await startPersister(t.config, logger, createMetrics({ defaultMetrics: false }));
    },
    sweeper: (now) =>
      new HoldExpirySweeper({ config: t.config, keys: t.keys, scripts, knex: knexOf(db.orm), logger, now }),
    persisted,
    async stop() {
      await persister?.stop();
      control.disconnect();
      await t.stop();
      await db.drop();
    },
  };
}

export interface LedgerCheck {
  /** Postings whose entries do not sum to zero (must be empty). */
  unbalancedPostings: string[];
  /** Sum of all entries per currency (must be all zero). */
  totals: Record<string, number>;
}

export async function checkLedger(db: TestDb): Promise<LedgerCheck> {
  const unbalanced = await db.query<{ posting_id: string }>(
    `select posting_id from ledger_entries group by posting_id, currency having sum(amount_cents) <> 0
     union
     select posting_id from ledger_entries group by posting_id having count(distinct currency) > 1`,
  );
  const totals = await db.query<{ currency: string; total: string }>(
    'select currency, sum(amount_cents)::text as total from ledger_entries group by currency',
  );
  return {
    unbalancedPostings: unbalanced.map((r) => r.posting_id),
    totals: Object.fromEntries(totals.map((r) => [r.currency, Number(r.total)])),
  };
}

export async function balance(db: TestDb, account: string, currency = 'USD'): Promise<number> {
  const [r] = await db.query<{ b: string | null }>(
    'select sum(amount_cents)::text as b from ledger_entries where account_id = ? and currency = ?',
    [account, currency],
  );
  return Number(r?.b ?? 0);
}

/** A clearing body (CONTRACT §2) for a swipe, cleared at a fixed time. */
export function clearingOf(swipe: { transaction_id: string }, shopperId: string, amount: string) {
  return {
    transaction_id: swipe.transaction_id,
    shopper_id: shopperId,
    amount,
    cleared_at: '2026-11-21T18:00:00Z',
  };
}
