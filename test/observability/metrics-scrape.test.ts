// Scrapes the real service: starts `node dist/cli.js serve` (and `persist`, when it
// comes up) against the local Redis and Postgres, drives a trip, a pick, an approved
// and a declined swipe so labelled series exist, then asserts that every metric the
// Grafana dashboard and the alert rules use is exported by the api or the persister
// (external metrics — Prometheus' `up`, cAdvisor's `container_*`, `kube_*` — are
// listed in references.ts and skipped).
//
// Needs `npm run build` first (dist/cli.js); SCRAPE_CLI=<path to cli.js> overrides.
// Ports 18100-18199. Own Redis prefix and own Postgres database, removed afterwards.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePortIn } from '../helpers/loopback.js';
import { cleanPrefix } from '../persister/helpers/redis.js';
import { isExternal, referencedMetrics, ROOT } from './references.js';

const CLI = process.env['SCRAPE_CLI'] ?? join(ROOT, 'dist/cli.js');
const REDIS_URL = 'redis://127.0.0.1:6379';
const PG_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const RUN = randomBytes(4).toString('hex');
const PREFIX = `tscrape${RUN}`;
const DB = `tscrape_${RUN}`;
const SECRET = `scrape-secret-${RUN}-0123456789`;
const TOKEN = `scrape-token-${RUN}-0123456789`;
const SHOPPER = `shopper-${RUN}`;
const TRIP = `trip-${RUN}`;
const READY_TIMEOUT_MS = 30_000;
const OUTPUT_BYTES_MAX = 64 * 1024;

interface Proc {
  name: string;
  child: ChildProcess;
  output: () => string;
}

const procs: Proc[] = [];
const journalDir = mkdtempSync(join(tmpdir(), 'tscrape-'));
let apiPort = 0;
let apiMetricsPort = 0;
let persisterMetricsPort = 0;
let persisterUp = false;
let dbCreated = false;

/** A free port in 18100-18199 (the range this test owns), checked by binding it. */
const freePort = (taken: Set<number>) => freePortIn(18100, 18199, taken);

function baseEnv(): NodeJS.ProcessEnv {
  return {
    PATH: process.env['PATH'],
    HOME: process.env['HOME'],
    NODE_ENV: 'test',
    LOG_LEVEL: 'info',
    REDIS_URL,
    REDIS_PREFIX: PREFIX,
    SIGNATURE_SECRETS: SECRET,
    API_TOKENS: TOKEN,
    DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${DB}`,
    FAILOPEN_JOURNAL_PATH: join(journalDir, 'failopen.jsonl'),
  };
}

function start(name: string, args: string[], env: NodeJS.ProcessEnv): Proc {
  const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (chunk: Buffer) => {
    out += chunk.toString('utf8');
    if (out.length > OUTPUT_BYTES_MAX) out = out.slice(-OUTPUT_BYTES_MAX);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const proc = { name, child, output: () => out };
  procs.push(proc);
  return proc;
}

async function stop(proc: Proc): Promise<void> {
  const { child } = proc;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 12_000);
  await exited;
  clearTimeout(timer);
}

/** Polls `url` until it answers 200; fails early with the process output when the process exits. */
async function waitFor200(url: string, proc: Proc, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
      throw new Error(
        `${proc.name} exited (${proc.child.exitCode ?? proc.child.signalCode}) before ${url} answered:\n${proc.output()}`,
      );
    }
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(1000) });
      if (r.status === 200) return;
      last = `status ${r.status}`;
    } catch (err) {
      last = String(err);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} not ready after ${timeoutMs} ms (${last}); ${proc.name} output:\n${proc.output()}`);
}

function psql(sql: string): { ok: boolean; output: string } {
  const r = spawnSync('psql', [PG_ADMIN_URL, '-v', 'ON_ERROR_STOP=1', '-Atc', sql], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  return {
    ok: r.status === 0,
    output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}`,
  };
}

/** Starts migrate + persist; returns false (with a warning) when the persister cannot run yet. */
async function startPersister(taken: Set<number>): Promise<boolean> {
  const created = psql(`CREATE DATABASE "${DB}"`);
  if (!created.ok) {
    console.warn(`metrics-scrape: persister skipped, cannot create database ${DB}: ${created.output}`);
    return false;
  }
  dbCreated = true;
  const migrate = spawnSync(process.execPath, [CLI, 'migrate'], {
    env: baseEnv(),
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (migrate.status !== 0) {
    console.warn(`metrics-scrape: persister skipped, migrate failed:\n${migrate.stdout}${migrate.stderr}`);
    return false;
  }
  persisterMetricsPort = await freePort(taken);
  const persisterPort = await freePort(taken);
  const proc = start('persister', ['persist'], {
    ...baseEnv(),
    PORT: String(persisterPort),
    METRICS_PORT: String(persisterMetricsPort),
  });
  try {
    await waitFor200(`http://127.0.0.1:${persisterMetricsPort}/metrics`, proc, 20_000);
    return true;
  } catch (err) {
    console.warn(`metrics-scrape: persister skipped, it did not come up: ${String(err)}`);
    await stop(proc);
    return false;
  }
}

function sign(body: string): string {
  const t = Math.floor(Date.now() / 1000);
  const v1 = createHmac('sha256', SECRET).update(`${t}.${body}`).digest('hex');
  return `t=${t},v1=${v1}`;
}

async function call(method: string, path: string, body: unknown, auth: 'bearer' | 'signed') {
  const raw = JSON.stringify(body);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (auth === 'bearer') headers['authorization'] = `Bearer ${TOKEN}`;
  else headers['x-signature'] = sign(raw);
  const r = await fetch(`http://127.0.0.1:${apiPort}${path}`, {
    method,
    headers,
    body: raw,
    signal: AbortSignal.timeout(5000),
  });
  return { status: r.status, text: await r.text() };
}

/** Metric family names in a Prometheus text exposition (from TYPE lines and samples, suffixes stripped). */
function exposedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) \S+/.exec(line);
    if (type) names.add(type[1]!);
    else if (line !== '' && !line.startsWith('#')) {
      const name = /^([A-Za-z_:][\w:]*)/.exec(line)?.[1];
      if (name) {
        names.add(name);
        names.add(name.replace(/_(bucket|sum|count)$/, ''));
      }
    }
  }
  return names;
}

async function scrape(port: number): Promise<string> {
  const r = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) });
  expect(r.status).toBe(200);
  expect(r.headers.get('content-type') ?? '').toMatch(/^text\/plain/);
  return r.text();
}

let apiText = '';
let persisterText = '';

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} not found: run \`npm run build\` first (or set SCRAPE_CLI)`);
  const taken = new Set<number>();
  // Database and persister first: the api's boot-time hydrate check needs the
  // database, and marks the (empty) partitions intact before swipes are decided.
  persisterUp = await startPersister(taken);
  apiPort = await freePort(taken);
  apiMetricsPort = await freePort(taken);
  const api = start('api', ['serve'], {
    ...baseEnv(),
    PORT: String(apiPort),
    METRICS_PORT: String(apiMetricsPort),
  });
  await waitFor200(`http://127.0.0.1:${apiPort}/readyz`, api, READY_TIMEOUT_MS);

  const trip = await call(
    'PUT',
    `/v1/shoppers/${SHOPPER}/trips/${TRIP}`,
    {
      merchant: { name: 'Safeway', address: '123 Main St' },
      currency: 'USD',
      orders: [{ order_id: 'o1', items: [{ item_id: 'milk', quantity: 2, unit_price: '3.49' }] }],
    },
    'bearer',
  );
  expect(trip.status, trip.text).toBe(201);
  const pick = await call(
    'POST',
    `/v1/shoppers/${SHOPPER}/trips/${TRIP}/items/milk`,
    { status: 'picked', quantity: 2, unit_price: '3.49' },
    'bearer',
  );
  expect(pick.status, pick.text).toBeLessThan(300);
  const merchant = { name: 'Safeway', address: '123 Main St' };
  const approved = await call(
    'POST',
    '/v1/authorizations',
    { transaction_id: `txn-${RUN}-1`, shopper_id: SHOPPER, amount: '5.00', merchant },
    'signed',
  );
  expect(approved.status, approved.text).toBe(200);
  const declined = await call(
    'POST',
    '/v1/authorizations',
    { transaction_id: `txn-${RUN}-2`, shopper_id: SHOPPER, amount: '500.00', merchant },
    'signed',
  );
  expect(declined.status, declined.text).toBe(402);

  if (persisterUp) {
    // Give the persister a moment to drain the four WAL events, so its labelled series exist.
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      persisterText = await scrape(persisterMetricsPort);
      if (/^persister_events_total\{/m.test(persisterText)) break;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  apiText = await scrape(apiMetricsPort);
}, 120_000);

afterAll(async () => {
  await Promise.all(procs.map(stop));
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    await cleanPrefix(redis, PREFIX);
  } finally {
    redis.disconnect();
  }
  if (dbCreated) psql(`DROP DATABASE IF EXISTS "${DB}" WITH (FORCE)`);
  rmSync(journalDir, { recursive: true, force: true });
}, 60_000);

describe('metrics scrape of the running service', () => {
  it('every metric used by the dashboard and the alert rules is exported', () => {
    const exposed = new Set([...exposedNames(apiText), ...exposedNames(persisterText)]);
    const missing = [...referencedMetrics()]
      .filter(([name]) => !isExternal(name) && !exposed.has(name))
      .map(([name, usedBy]) => `${name} (used by ${usedBy.join('; ')})`);
    expect(missing, `persister scraped: ${persisterUp}\n${missing.join('\n')}`).toEqual([]);
  });

  it('decisions are counted with bounded labels', () => {
    expect(apiText).toMatch(/^swipe_decisions_total\{[^}]*decision="approved"[^}]*\} 1$/m);
    expect(apiText).toMatch(
      /^swipe_decisions_total\{[^}]*decision="declined"[^}]*reason="AMOUNT_EXCEEDS_ALLOWANCE"/m,
    );
    expect(apiText).toMatch(/^swipe_decision_duration_seconds_count \d+/m);
    expect(apiText).toMatch(/^http_requests_total\{[^}]*status="402"/m);
    // No shopper, trip or transaction id ever reaches a label value.
    for (const id of [SHOPPER, TRIP, `txn-${RUN}`, RUN]) expect(apiText).not.toContain(id);
    expect(persisterText).not.toContain(RUN);
  });

  it('exports default process metrics', () => {
    for (const n of [
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_p99_seconds',
    ]) {
      expect(exposedNames(apiText).has(n), n).toBe(true);
    }
  });

  it('the persister exports its metrics when it runs', () => {
    if (!persisterUp) {
      console.warn('metrics-scrape: persister not running; its metrics were only checked in the api scrape');
      return;
    }
    const names = exposedNames(persisterText);
    for (const n of [
      'persister_events_total',
      'persister_batch_duration_seconds',
      'persister_dead_letters_total',
      'wal_pending_entries',
    ]) {
      expect(names.has(n), n).toBe(true);
    }
  });
});
