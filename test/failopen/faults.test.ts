// Fail-open under real faults (docs/failopen.md, BENCHMARKS.md "Fail-open under
// faults"). Real processes on loopback only: a PRIVATE redis-server per fault
// (ports 16520-16523, never the shared one) and the api as a child process,
// under a bounded open-loop load (100 req/s, <= 17 s per fault). Each fault
// must keep every guarantee checked by faultHarness.check(); the figures are
// written to bench-results/tmp/failopen-faults.json.
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, describe, expect, test } from 'vitest';
import { metaKey } from '../../src/persister/hydrate.js';
import { Keys } from '../../src/redis/keys.js';
import {
  type ApiProc,
  CLIENT_TIMEOUT_MS,
  check,
  createShoppers,
  type FaultReport,
  failOpenLogLines,
  type LoadOptions,
  type LoadRun,
  readWal,
  runLoad,
  startApiProc,
  tripTotals,
  type WalEvent,
} from './faultHarness.js';
import { type PrivateRedis, startPrivateRedis } from './privateRedis.js';

const PARTITIONS = 8;
const RPS = 100;
const SHOPPERS = 40;
const MAX_CENTS = 10_000; // defaults of FAILOPEN_MAX_CENTS / FAILOPEN_SHOPPER_MAX_CENTS
const SHOPPER_MAX_CENTS = 20_000;
const DEADLINE_MS = 25; // default DECISION_TIMEOUT_MS

/** Hypervisor steal above this share of the machine's CPU during the load: the VM, not the service, sets p99. */
const STEAL_PCT_MAX = 5;

/**
 * The latency bound is a property of the service, not of a machine where other
 * work holds every core: on an oversubscribed machine (1-min load average above
 * the core count) or a VM whose host gives the cores to other guests (steal
 * above STEAL_PCT_MAX %), p99 is reported, not asserted.
 */
function expectLatency(report: FaultReport, bound = true): void {
  const load = loadavg()[0] as number;
  report.load_avg = Math.round(load * 10) / 10;
  if (!bound) return;
  const steal = report.steal_pct ?? 0;
  if (load <= cpus().length && steal <= STEAL_PCT_MAX)
    expect(report.p99_ms).toBeLessThanOrEqual(DEADLINE_MS + 10);
  else
    console.warn(
      `p99 ${report.p99_ms} ms not asserted: load average ${load} on ${cpus().length} cores, steal ${steal} %`,
    );
}

const dir = mkdtempSync(join(tmpdir(), 'sa-faults-'));
const reports: FaultReport[] = [];

afterAll(() => {
  mkdirSync('bench-results/tmp', { recursive: true });
  writeFileSync('bench-results/tmp/failopen-faults.json', `${JSON.stringify(reports, null, 2)}\n`);
  console.log(table(reports));
  if (process.env['KEEP_FAULT_DIR'] === undefined) rmSync(dir, { recursive: true, force: true });
  else console.log(`fault logs kept in ${dir}`);
});

function table(rows: FaultReport[]): string {
  const head =
    '| fault | sent | answered | fail-open approvals | fail-closed declines | p99 ms (p50 / max) | entries replayed (outcomes) | entries lost |\n| --- | --- | --- | --- | --- | --- | --- | --- |';
  const lines = rows.map(
    (r) =>
      `| ${r.fault} | ${r.sent} | ${r.answered} | ${r.failopen_approvals} | ${r.failclosed_declines} | ${r.p99_ms} (${r.p50_ms} / ${r.max_ms}) | ${r.replayed} (${Object.entries(
        r.replay_outcomes,
      )
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}) | ${r.lost} |`,
  );
  return [head, ...lines].join('\n');
}

async function until(what: string, probe: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await probe()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface Setup {
  readonly redis: PrivateRedis;
  readonly prefix: string;
  readonly env: Record<string, string>;
  readonly logs: string[];
  api: ApiProc;
  shoppers: string[];
}

async function setUp(name: string, port: number): Promise<Setup> {
  const redis = await startPrivateRedis(port);
  const prefix = `fo${name}${randomBytes(3).toString('hex')}`;
  const env = {
    REDIS_URL: redis.url,
    REDIS_PREFIX: prefix,
    FAILOPEN_JOURNAL_PATH: join(dir, `${name}.jsonl`),
  };
  const log = join(dir, `${name}-1.log`);
  const api = await startApiProc(env, log);
  const shoppers = await createShoppers(api.base, SHOPPERS, name);
  // What `hydrate` does at deploy time: every partition marked intact.
  const keys = new Keys(prefix, PARTITIONS);
  for (let p = 0; p < PARTITIONS; p++)
    await redis.client().hset(metaKey(keys, p), 'initialized_ms', Date.now());
  // Warm-up (JIT, keep-alive connections), not measured.
  await runLoad({
    target: () => api.base,
    shoppers,
    durationMs: 2000,
    rps: RPS,
    retryFraction: 0,
    schedule: [],
  });
  await api.metric('nodejs_eventloop_lag_max_seconds'); // resets the api's max: finish() reads the load's
  return { redis, prefix, env, logs: [log], api, shoppers };
}

async function finish(
  s: Setup,
  fault: string,
  run: LoadRun,
  extraWal: WalEvent[] = [],
): Promise<FaultReport> {
  const { recs } = run;
  // The first scrape after the load: prom-client's max covers the time since the warm-up's scrape.
  const apiLagMaxMs = Math.round((await s.api.metric('nodejs_eventloop_lag_max_seconds')) * 10_000) / 10;
  await until(
    'journal drained',
    async () => (await s.api.metric('swipe_failopen_journal_pending')) === 0,
    30_000,
  );
  const client: Redis = s.redis.client();
  const wal = [...extraWal, ...(await readWal(client, s.prefix, PARTITIONS))];
  const totals = await tripTotals(client, s.prefix, PARTITIONS, s.shoppers);
  const logged = s.logs
    .map(failOpenLogLines)
    .reduce((a, b) => ({ approved: a.approved + b.approved, declined: a.declined + b.declined }));
  const report = check({
    fault,
    recs,
    wal,
    maxCents: MAX_CENTS,
    shopperMaxCents: SHOPPER_MAX_CENTS,
    tripTotals: totals,
    journalEntries: logged.approved,
  });
  if (report.failopen_approvals > logged.approved)
    report.problems.push('fewer fail-open log lines than approvals');
  report.client_lag_max_ms = run.clientLagMaxMs;
  report.api_lag_max_ms = apiLagMaxMs;
  report.steal_pct = run.stealPct;
  reports.push(report);
  console.log(JSON.stringify(report));
  const t0 = recs[0]?.sentAtMs ?? 0;
  const slowest = [...recs].sort((a, b) => b.latencyMs - a.latencyMs).slice(0, 15);
  console.log(
    `slowest: ${slowest.map((r) => `${r.sentAtMs - t0}ms:${Math.round(r.latencyMs)}ms:${r.status}:${r.json['mode'] ?? r.json['reason']}`).join(' ')}`,
  );
  return report;
}

async function tearDown(s: Setup | undefined): Promise<void> {
  if (s === undefined) return;
  s.redis.thaw();
  await s.api.stop().catch(() => {});
  await s.redis.stop();
}

/** Runs one fault on its own private Redis and api, torn down whatever happens. */
async function underFault(name: string, port: number, body: (s: Setup) => Promise<void>): Promise<void> {
  let s: Setup | undefined;
  try {
    s = await setUp(name, port);
    await body(s);
  } finally {
    await tearDown(s);
  }
}

/** The bounded open-loop load during a fault: RPS requests a second, a tenth of them retried. */
function faultLoad(
  s: Setup,
  durationMs: number,
  schedule: LoadOptions['schedule'],
  target: () => string | undefined = () => s.api.base,
): Promise<LoadRun> {
  return runLoad({ target, shoppers: s.shoppers, durationMs, rps: RPS, retryFraction: 0.1, schedule });
}

describe.sequential('fail-open under faults', () => {
  test('Redis frozen (SIGSTOP) for 10 s under steady load', { timeout: 90_000 }, () =>
    underFault('freeze', 16520, async (s) => {
      const run = await faultLoad(s, 17_000, [
        { atMs: 3000, run: () => s.redis.freeze() },
        { atMs: 13_000, run: () => s.redis.thaw() },
      ]);
      const report = await finish(s, 'Redis frozen 10 s (SIGSTOP)', run);
      expect(report.problems).toEqual([]);
      expect(report.failopen_approvals).toBeGreaterThan(50);
      expectLatency(report);
    }),
  );

  test('Redis killed (SIGKILL) and restarted empty under load, with hydrate', { timeout: 90_000 }, () =>
    underFault('kill', 16521, async (s) => {
      let preWal: WalEvent[] = [];
      let snapshot: Array<[string, Buffer, number]> = [];
      const run = await faultLoad(s, 14_000, [
        {
          atMs: 3000,
          run: async () => {
            // What a caught-up persister would hold: every key and the WAL at
            // the moment of the crash (writes paused so nothing slips in between).
            const c = s.redis.client();
            await c.call('CLIENT', 'PAUSE', '3000', 'WRITE');
            preWal = await readWal(c, s.prefix, PARTITIONS);
            snapshot = await dumpState(c, s.prefix);
            await s.redis.kill9();
          },
        },
        {
          atMs: 8000,
          run: async () => {
            await s.redis.restart();
            await hydrate(s.redis.client(), s.prefix, snapshot);
          },
        },
      ]);
      const report = await finish(s, 'Redis killed, restarted empty + hydrate', run, preWal);
      expect(report.problems).toEqual([]);
      expect(report.failopen_approvals).toBeGreaterThan(50);
      expectLatency(report);
    }),
  );

  test('Redis slowed (DEBUG SLEEP) past the deadline: no key approved twice', { timeout: 90_000 }, () =>
    underFault('slow', 16522, async (s) => {
      const run = await faultLoad(s, 15_000, [
        {
          atMs: 3000,
          run: async () => {
            // 40 ms stalls with 10 ms gaps for 8 s: most calls miss the 25 ms deadline,
            // some of them still execute late in Redis.
            const c = s.redis.client();
            const end = Date.now() + 8000;
            while (Date.now() < end) {
              await c.call('DEBUG', 'SLEEP', '0.04');
              await new Promise((r) => setTimeout(r, 10));
            }
          },
        },
      ]);
      const report = await finish(s, 'Redis slowed (DEBUG SLEEP 40 ms every 50 ms, 8 s)', run);
      expect(report.problems).toEqual([]);
      expect(report.failopen_approvals).toBeGreaterThan(10);
      // Latency reported only: the issue bounds p99 for a frozen or killed Redis.
      // Here a fifth of the calls wait out the full deadline by design (each
      // PING that lands in a gap closes the circuit again), so p99 is the
      // deadline plus whatever the VM's scheduler adds (10-40 ms stalls of an
      // idle process are common on this machine).
      expectLatency(report, false);
    }),
  );

  test('the api SIGKILLed during an outage and restarted: its journal is replayed', { timeout: 90_000 }, () =>
    underFault('apikill', 16523, async (s) => {
      let current: ApiProc | undefined = s.api;
      let killedAt = 0;
      let restartedAt = 0;
      const schedule = [
        { atMs: 3000, run: () => s.redis.freeze() },
        {
          atMs: 7000,
          run: async () => {
            const dead = current as ApiProc;
            current = undefined;
            killedAt = Date.now();
            await dead.kill9();
            const log = join(dir, 'apikill-2.log');
            s.logs.push(log);
            s.api = await startApiProc(s.env, log);
            current = s.api;
            restartedAt = Date.now();
          },
        },
        { atMs: 12_000, run: () => s.redis.thaw() },
      ];
      const run = await faultLoad(s, 16_000, schedule, () => current?.base);
      // Requests cut off by the crash are the processor's to retry elsewhere: not a failure here.
      for (const r of run.recs) {
        if (r.error !== '' && r.sentAtMs >= killedAt - CLIENT_TIMEOUT_MS && r.sentAtMs <= restartedAt)
          r.error = 'no api';
      }
      const report = await finish(s, 'api SIGKILLed during a Redis freeze, restarted', run);
      report.unanswered = run.recs.filter((r) => r.error === 'no api').length;
      expect(report.problems).toEqual([]);
      expect(report.failopen_approvals).toBeGreaterThan(50);
      expect(report.lost).toBe(0);
      expectLatency(report, false); // a process restart: latency reported only
    }),
  );
});

/** Every key of the prefix but the WAL streams and meta, as DUMP payloads with their TTLs. */
async function dumpState(c: Redis, prefix: string): Promise<Array<[string, Buffer, number]>> {
  const out: Array<[string, Buffer, number]> = [];
  let cursor = '0';
  do {
    const [next, keys] = await c.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      if (key.endsWith(':wal') || key.endsWith(':meta')) continue; // hydrate writes meta last
      const dump = await c.dumpBuffer(key);
      const ttl = await c.pttl(key);
      if (dump !== null) out.push([key, dump, ttl > 0 ? ttl : 0]);
    }
  } while (cursor !== '0');
  return out;
}

/**
 * Stand-in for `swipe-authorizer hydrate` (rebuilds Redis from Postgres): puts
 * the pre-crash state back, then marks every partition intact (meta), which is
 * what lets the replayer apply approvals of shoppers it had deferred.
 */
async function hydrate(c: Redis, prefix: string, snapshot: Array<[string, Buffer, number]>): Promise<void> {
  for (const [key, dump, ttl] of snapshot) await c.restore(key, ttl, dump, 'REPLACE');
  const keys = new Keys(prefix, PARTITIONS);
  for (let p = 0; p < PARTITIONS; p++) await c.hset(metaKey(keys, p), 'hydrated_ms', Date.now());
}
