// A region lost for good, taken over by another (docs/regions.md "Losing a region"):
// region "lost" (its own database in the shared Postgres, a private Redis with an
// AOF, an api and a persister from dist/) approves swipes; its persister is killed
// first, so the next swipes stay in the Redis WAL only; then its api and Redis are
// SIGKILLed. Region "survivor" (its own database, its own private Redis) runs
// `region-takeover` against lost's database as the promoted replica and lost's AOF
// (restarted from its disk) as the lost Redis, then decides those shoppers' swipes.
// Ports 19600-19799 (this suite's range).
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { knexOf } from '../../src/db/orm.js';
import { reconcile } from '../../src/reconcile/reconcile.js';
import type { TakeoverReport } from '../../src/regions/takeover.js';
import { type ApiClient, apiClient, SECRET, swipeBody, TOKEN, tripWithMilk } from '../helpers/api.js';
import { createTestDb, type TestDb } from '../persister/helpers/pg.js';
import { type Child, ensureBuilt, PERSISTER_MAIN, spawnPersister } from '../persister/helpers/proc.js';

const LOST_REDIS = 19610;
const SURVIVOR_REDIS = 19611;
const LOST_API = 19620;
const SURVIVOR_API = 19630;
const PARTITIONS = '8';
const PREFIX = 'tk';
/** Every redis-server started here, killed in afterAll whatever happened. */
const started: RedisProc[] = [];

interface RedisProc {
  readonly url: string;
  kill9(): Promise<void>;
}

/** A private redis-server on `port` with its data in `dir` (AOF, fsync always: what its disk keeps). */
async function startRedis(port: number, dir: string): Promise<RedisProc> {
  const proc: ChildProcess = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'yes',
      '--appendfsync',
      'always',
    ],
    { stdio: 'ignore' },
  );
  const url = `redis://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => {});
    try {
      await probe.connect();
      // This process (not a leftover on the port), done loading its AOF.
      const info = await probe.info();
      if (info.includes(`process_id:${proc.pid}\r\n`) && info.includes('loading:0')) break;
    } catch {
      // not up yet
    } finally {
      probe.disconnect();
    }
    if (Date.now() > deadline) throw new Error(`redis on ${port} did not start`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const handle: RedisProc = {
    url,
    async kill9() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
  started.push(handle);
  return handle;
}

function regionEnv(
  region: string,
  db: TestDb,
  redisUrl: string,
  port: number,
  journalDir: string,
): Record<string, string> {
  return {
    REGION: region,
    FAILOPEN_JOURNAL_PATH: join(journalDir, `failopen-${region}.jsonl`),
    DATABASE_URL: db.url,
    REDIS_URL: redisUrl,
    REDIS_PREFIX: PREFIX,
    PARTITIONS,
    HOST: '127.0.0.1',
    PORT: String(port),
    METRICS_PORT: String(port + 1),
    SIGNATURE_SECRETS: SECRET,
    API_TOKENS: TOKEN,
    MAX_SWIPES_PER_MINUTE: '1000',
    // A busy shared machine must not turn these decisions into fail-open answers (not this test's subject).
    DECISION_TIMEOUT_MS: '800',
  };
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function startApi(env: Record<string, string>): Promise<Child> {
  const api = spawnPersister(env, 'serve');
  await waitFor('api ready', async () => {
    if (api.proc.exitCode !== null) throw new Error(`api exited: ${api.output()}`);
    return fetch(`http://127.0.0.1:${env['PORT']}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    );
  });
  return api;
}

async function kill9(c: Child): Promise<void> {
  if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
  await c.exited;
}

/** `region-takeover` run to its end: exit code and parsed report. */
async function takeover(env: Record<string, string>, args: string[]) {
  const child = spawn(process.execPath, [PERSISTER_MAIN, 'region-takeover', ...args], {
    env: { PATH: process.env['PATH'] ?? '', NODE_ENV: 'test', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (err += b.toString()));
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  if (code !== 0 && code !== 3) throw new Error(`region-takeover exited ${code}: ${err}`);
  return { code, report: JSON.parse(out) as TakeoverReport, stderr: err };
}

describe('region-takeover: a region lost for good', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sa-takeover-'));
  const lostRedisDir = join(dir, 'lost-redis');
  const survivorRedisDir = join(dir, 'survivor-redis');
  let lostDb: TestDb;
  let survivorDb: TestDb;
  let lostRedis: RedisProc | undefined;
  let survivorRedis: RedisProc | undefined;
  const children: Child[] = [];
  let lostEnv: Record<string, string>;
  let survivorEnv: Record<string, string>;
  /** Shoppers of lost, each with one persisted approval of 10.00 (remaining 30.13). */
  const shoppers: { shopper: string; trip: string; first: Record<string, unknown>; firstAuth: string }[] = [];
  /** Approvals lost decided after its persister died: only in its WAL. */
  const unpersisted: { shopper: string; txn: string }[] = [];

  beforeAll(async () => {
    ensureBuilt();
    [lostDb, survivorDb] = await Promise.all([createTestDb(), createTestDb()]);
    mkdirSync(lostRedisDir);
    mkdirSync(survivorRedisDir);
    lostRedis = await startRedis(LOST_REDIS, lostRedisDir);
    survivorRedis = await startRedis(SURVIVOR_REDIS, survivorRedisDir);
    lostEnv = regionEnv('lost', lostDb, lostRedis.url, LOST_API, dir);
    survivorEnv = regionEnv('survivor', survivorDb, survivorRedis.url, SURVIVOR_API, dir);
  }, 180_000);

  afterAll(async () => {
    for (const c of children) await kill9(c);
    for (const r of started) await r.kill9();
    await Promise.all([lostDb?.drop(), survivorDb?.drop()]);
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('lost approves swipes; its persister, api and Redis die with WAL entries unpersisted', async () => {
    const api = await startApi(lostEnv);
    const persister = spawnPersister({ ...lostEnv, METRICS_PORT: String(LOST_API + 2) });
    children.push(api, persister);
    const h = apiClient(`http://127.0.0.1:${LOST_API}`);
    for (let i = 0; i < 4; i++) {
      const t = await tripWithMilk(h, 'tk');
      const first = swipeBody(t.shopper, '10.00');
      const r = await h.swipe(first);
      expect(r.json).toMatchObject({ decision: 'approved', remaining_cents: 3013 });
      shoppers.push({ ...t, first, firstAuth: r.json['authorization_id'] as string });
    }
    await waitFor('lost persister caught up', async () => {
      const [row] = await lostDb.query<{ n: number }>(`select count(*)::int as n from authorizations`);
      return row?.n === 4;
    });
    await kill9(persister);
    for (const s of shoppers.slice(0, 2)) {
      const body = swipeBody(s.shopper, '5.00');
      const r = await h.swipe(body);
      expect(r.json).toMatchObject({ decision: 'approved', remaining_cents: 2513 });
      unpersisted.push({ shopper: s.shopper, txn: body['transaction_id'] as string });
    }
    await kill9(api);
    await lostRedis?.kill9();
    const [row] = await lostDb.query<{ n: number }>(`select count(*)::int as n from authorizations`);
    expect(row?.n).toBe(4);
  }, 120_000);

  it('survivor takes over: rows imported once, collisions reported, unpersisted entries listed', async () => {
    // The same ledger account id with different content on both sides: a collision, never merged.
    await lostDb.query(`insert into ledger_accounts (account_id, kind) values ('tk-collide', 'lost-kind')`);
    await survivorDb.query(`insert into ledger_accounts (account_id, kind) values ('tk-collide', 'ours')`);
    // Lost's Redis disk (its AOF) is read back: the entries its persister never wrote.
    lostRedis = await startRedis(LOST_REDIS, lostRedisDir);
    const args = ['--from-region', 'lost', '--replica-url', lostDb.url, '--lost-redis-url', lostRedis.url];
    const first = await takeover(survivorEnv, [...args, '--out', join(dir, 'report.json')]);
    expect(first.code).toBe(3);
    expect(JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'))).toEqual(first.report);
    const r = first.report;
    expect(r.tables['trips']).toMatchObject({ source: 4, imported: 4, collisions: 0 });
    expect(r.tables['authorizations']).toMatchObject({ source: 4, imported: 4, collisions: 0 });
    expect(r.tables['ledger_transfers']?.imported).toBeGreaterThan(0);
    expect(r.collisions).toEqual({
      count: 1,
      listed: [{ table: 'ledger_accounts', key: { account_id: 'tk-collide' } }],
    });
    const [ours] = await survivorDb.query<{ kind: string }>(
      `select kind from ledger_accounts where account_id = 'tk-collide'`,
    );
    expect(ours?.kind).toBe('ours');
    expect(r.shoppersTakenOver).toBe(4);
    expect(r.shoppersAnnounced).toBe(0); // one region here (no REGION_PEERS): nobody to tell
    const persisted = r.wal.partitions.filter((p) => p.lastStreamId !== '-');
    expect(persisted.length).toBeGreaterThan(0);
    expect(r.wal.unpersistedTotal).toBeGreaterThanOrEqual(2);
    const decided = r.wal.unpersistedAuthorizations.filter((e) => e.type === 'authorization.decided');
    expect(decided.map((e) => e.transactionId).sort()).toEqual(unpersisted.map((u) => u.txn).sort());
    expect(decided.every((e) => e.decision === 'approved' && e.amountCents === 500)).toBe(true);

    const again = await takeover(survivorEnv, args);
    for (const [table, t] of Object.entries(again.report.tables)) {
      expect({ table, imported: t.imported }).toEqual({ table, imported: 0 });
      expect(t.alreadyPresent + t.collisions).toBe(t.source);
    }
    expect(again.report.collisions.count).toBe(1);
    await lostRedis.kill9();
  }, 180_000);

  let survivor: ApiClient;

  it("survivor decides the taken-over shoppers' swipes with their trips intact", async () => {
    children.push(await startApi(survivorEnv));
    children.push(spawnPersister({ ...survivorEnv, METRICS_PORT: String(SURVIVOR_API + 2) }));
    survivor = apiClient(`http://127.0.0.1:${SURVIVOR_API}`);
    const [a, , c] = shoppers as [(typeof shoppers)[0], unknown, (typeof shoppers)[0]];
    // A retry of a swipe whose record survived is a replay: the first answer, nothing consumed.
    const retry = await survivor.swipe(c.first);
    expect(retry.status).toBe(200);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.json).toMatchObject({ decision: 'approved', authorization_id: c.firstAuth });
    // Remaining allowance as Postgres recorded it: 40.13 - 10.00.
    const over = await survivor.swipe(swipeBody(c.shopper, '30.14'));
    expect(over.json).toMatchObject({
      decision: 'declined',
      reason: 'AMOUNT_EXCEEDS_ALLOWANCE',
      remaining_cents: 3013,
    });
    const exact = await survivor.swipe(swipeBody(c.shopper, '30.13'));
    expect(exact.json).toMatchObject({ decision: 'approved', remaining_cents: 0 });
    // Shopper a's 5.00 approval never reached Postgres: the record here does not have it
    // (reconciliation lists its settlement below).
    const next = await survivor.swipe(swipeBody(a.shopper, '1.00'));
    expect(next.json).toMatchObject({ decision: 'approved', remaining_cents: 2913 });
    // The survivor's persister books them on the imported trips: 10.00 + 30.13 for c.
    await waitFor('survivor persister caught up', async () => {
      const [t] = await survivorDb.query<{ approved: string }>(
        `select approved_cents::text as approved from trips where shopper_id = ? and trip_id = ?`,
        [c.shopper, c.trip],
      );
      return t?.approved === '4013';
    });
  }, 60_000);

  it('a later run (lost Redis gone) imports nothing, and rows changed here since are not collisions', async () => {
    const later = await takeover(survivorEnv, ['--from-region', 'lost', '--replica-url', lostDb.url]);
    expect(later.code).toBe(3); // the planted ledger account still collides
    expect(later.report.collisions.count).toBe(1);
    for (const t of Object.values(later.report.tables)) expect(t.imported).toBe(0);
    // Shopper c's trip took two more swipes here: changed since the takeover, kept as it is here.
    expect(later.report.tables['trips']?.changedHereSince).toBeGreaterThanOrEqual(1);
    expect(later.report.wal.unpersistedTotal).toBeNull();
    const [c] = await survivorDb.query<{ approved: string }>(
      `select approved_cents::text as approved from trips where shopper_id = ?`,
      [shoppers[2]?.shopper],
    );
    expect(c?.approved).toBe('4013');
  }, 120_000);

  it('reconciliation lists the settlements of the unpersisted approvals as missing_after_takeover', async () => {
    const stranger = `txn_stranger_${Date.now()}`;
    const at = new Date().toISOString();
    const lines = [
      'transaction_id,shopper_id,merchant,amount,currency,settled_at,type',
      ...unpersisted.map((u) => `${u.txn},${u.shopper},SAFEWAY #1234,5.00,USD,${at},clearing`),
      `${stranger},nobody_here,SAFEWAY #1234,7.00,USD,${at},clearing`,
    ];
    const file = join(dir, 'settlement.csv');
    writeFileSync(file, `${lines.join('\n')}\n`);
    const result = await reconcile(knexOf(survivorDb.orm), file, 'settlement.csv', {});
    const byTxn = new Map(result.items.map((it) => [it.transactionId, it]));
    for (const u of unpersisted) {
      expect(byTxn.get(u.txn)).toMatchObject({ kind: 'missing_after_takeover', klass: 'needs_review' });
      expect(byTxn.get(u.txn)?.detail).toContain('lost region lost');
    }
    expect(byTxn.get(stranger)?.kind).toBe('unknown_transaction');
  }, 60_000);
});
