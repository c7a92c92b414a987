// Three regions on this machine (CONTRACT §8 test, docs/regions.md): each its own private
// redis-server, its own Postgres database, its own api and persister (`node dist/cli.js`
// children, as in production), and between regions a TCP proxy adding 40 ms each way.
// Ports 19400-19599 (this suite's range; REGIONS_TEST_PORTS=<min>-<max> moves it). Everything is stopped by the PID started here.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePortIn } from '../helpers/loopback.js';
import { type RedisServer, startRedisServer } from '../helpers/redisServer.js';
import { createTestDb, type TestDb } from '../persister/helpers/pg.js';
import { ensureBuilt, PERSISTER_MAIN } from '../persister/helpers/proc.js';
import { type LatencyProxy, startLatencyProxy } from './latencyProxy.js';

export const SECRET = 'regions-signature-secret-0123456789';
export const TOKEN = 'regions-api-token-0123456789abcdef';
export const CHANNEL_SECRET = 'regions-channel-secret-0123456789abcdef';
export const LINK_DELAY_MS = 40;
/** A shared machine gives each engineer a port range: REGIONS_TEST_PORTS=<min>-<max> moves the suite there. */
const PORTS = /^(\d{4,5})-(\d{4,5})$/.exec(process.env['REGIONS_TEST_PORTS'] ?? '');
const PORT_MIN = PORTS ? Number(PORTS[1]) : 19400;
const PORT_MAX = PORTS ? Number(PORTS[2]) : 19599;
/** A loaded shared machine boots slowly: the api's hydrate and warm-up wait for it. */
const READY_TIMEOUT_MS = 50_000;

export interface Proc {
  readonly child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

export interface Region {
  readonly name: string;
  /** The api itself (a client in this region). */
  readonly base: string;
  readonly metricsBase: string;
  readonly redis: RedisServer;
  readonly db: TestDb;
  readonly api: Proc;
  readonly persister: Proc;
  readonly proxy: LatencyProxy;
  readonly journalDir: string;
}

const taken = new Set<number>();

/** A free port of this suite's range, checked by binding it. */
const freePort = () => freePortIn(PORT_MIN, PORT_MAX, taken);

function spawnCli(command: string, env: Record<string, string>): Proc {
  const child = spawn(process.execPath, [PERSISTER_MAIN, command], {
    env: { PATH: process.env['PATH'] ?? '', NODE_ENV: 'test', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (b: Buffer): void => {
    out = (out + b.toString()).slice(-20_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  if (child.pid !== undefined) childPids.add(child.pid);
  const exited = new Promise<void>((r) =>
    child.once('exit', () => {
      if (child.pid !== undefined) childPids.delete(child.pid);
      r();
    }),
  );
  return {
    child,
    output: () => out,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGCONT'); // a frozen child must be able to exit
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

async function waitReady(base: string, proc: Proc, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.child.exitCode !== null) throw new Error(`api exited: ${proc.output()}`);
    try {
      if ((await fetch(`${base}/readyz`)).status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`api ${base} not ready in ${timeoutMs} ms: ${proc.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface Plan {
  readonly name: string;
  readonly apiPort: number;
  readonly proxyPort: number;
  readonly redis: RedisServer;
  readonly db: TestDb;
  readonly journalDir: string;
}

function regionEnv(plan: Plan, all: readonly Plan[], forwardTimeoutMs: number): Record<string, string> {
  const peers = all.filter((p) => p !== plan).map((p) => `${p.name}=http://127.0.0.1:${p.proxyPort}`);
  return {
    REDIS_URL: `redis://127.0.0.1:${plan.redis.port}`,
    DATABASE_URL: plan.db.url,
    SIGNATURE_SECRETS: SECRET,
    API_TOKENS: TOKEN,
    PARTITIONS: '8',
    HOST: '127.0.0.1',
    REGION: plan.name,
    REGION_PEERS: peers.join(','),
    REGION_SECRETS: CHANNEL_SECRET,
    REGION_FORWARD_TIMEOUT_MS: String(forwardTimeoutMs),
    FAILOPEN_JOURNAL_PATH: join(plan.journalDir, 'failopen.jsonl'),
    SHUTDOWN_GRACE_MS: '2000',
  };
}

export async function startRegions(
  names: readonly string[],
  forwardTimeoutMs: number,
  extraEnv: Record<string, string> = {},
): Promise<Region[]> {
  ensureBuilt();
  // Everything started so far is stopped if a later step fails, or by stopStarted() when the
  // caller gave up waiting (a beforeAll timeout): nothing outlives the test.
  const undo = started;
  try {
    const plans: Plan[] = [];
    for (const name of names) {
      const [apiPort, proxyPort, redisPort] = [await freePort(), await freePort(), await freePort()];
      const redis = await startRedisServer({ port: redisPort });
      childPids.add(redis.pid);
      track(undo, async () => {
        await redis.stop();
        childPids.delete(redis.pid);
      });
      const db = await createTestDb();
      track(undo, () => db.drop());
      const journalDir = mkdtempSync(join(tmpdir(), `sa-region-${name}-`));
      track(undo, async () => rmSync(journalDir, { recursive: true, force: true }));
      plans.push({ name, apiPort, proxyPort, redis, db, journalDir });
    }
    const regions: Region[] = [];
    for (const plan of plans) regions.push(await startRegion(plan, plans, forwardTimeoutMs, extraEnv, undo));
    await Promise.all(regions.map((r) => waitReady(r.base, r.api, READY_TIMEOUT_MS)));
    return regions;
  } catch (err) {
    await stopStarted();
    throw err;
  }
}

/** Undo steps of everything startRegions started, newest last. */
const started: (() => Promise<void>)[] = [];
/** Child processes still running, killed synchronously if the test process exits first. */
const childPids = new Set<number>();
process.once('exit', () => {
  for (const pid of childPids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** Set by stopStarted: a start still under way (its caller gave up) undoes each step at once. */
let closed = false;

function track(undo: (() => Promise<void>)[], step: () => Promise<void>): void {
  if (closed) void step().catch(() => undefined);
  else undo.push(step);
}

/** Stops everything startRegions started, newest first (also what a failed start left). */
export async function stopStarted(): Promise<void> {
  closed = true;
  while (started.length > 0) await (started.pop() as () => Promise<void>)().catch(() => undefined);
}

/** One region's api, persister and the proxy in front of its api. */
async function startRegion(
  plan: Plan,
  plans: readonly Plan[],
  forwardTimeoutMs: number,
  extraEnv: Record<string, string>,
  undo: (() => Promise<void>)[],
): Promise<Region> {
  const env = { ...regionEnv(plan, plans, forwardTimeoutMs), ...extraEnv };
  const metricsPort = await freePort();
  const api = spawnCli('serve', { ...env, PORT: String(plan.apiPort), METRICS_PORT: String(metricsPort) });
  track(undo, () => api.stop());
  const persister = spawnCli('persist', {
    ...env,
    PORT: String(await freePort()),
    METRICS_PORT: String(await freePort()),
  });
  track(undo, () => persister.stop());
  const proxy = await startLatencyProxy(plan.proxyPort, plan.apiPort, LINK_DELAY_MS);
  track(undo, () => proxy.close());
  return {
    name: plan.name,
    base: `http://127.0.0.1:${plan.apiPort}`,
    metricsBase: `http://127.0.0.1:${metricsPort}`,
    redis: plan.redis,
    db: plan.db,
    api,
    persister,
    proxy,
    journalDir: plan.journalDir,
  };
}
