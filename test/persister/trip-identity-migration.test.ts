// The trip-identity migration on a database the previous release wrote, with
// the previous release still serving while the expand step runs (helm runs
// `migrate` before the rollout):
//   1. the previous release (built from git) creates trips, picks, decisions,
//      reversals and clearings; its persister writes them (trips, orders,
//      items, authorizations, ledger);
//   2. expand runs while it serves; it keeps serving and persisting, and a
//      reused trip id it would have dropped silently is dead-lettered;
//   3. contract runs once it is stopped: every row is still there, unchanged,
//      orders and items now name their shopper;
//   4. this release serves the previous release's trips from their legacy
//      Redis keys, and after Redis loses everything, hydrate rebuilds them
//      from the migrated Postgres exactly as the previous release showed them.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runMigrations } from '../../src/db/migrate.js';
import { ensureHydrated } from '../../src/persister/commands.js';
import { Keys } from '../../src/redis/keys.js';
import {
  type ApiClient,
  apiClient,
  type Reply,
  SECRET,
  safewayTrip,
  startTestApi,
  swipeBody,
  TOKEN,
  type TestApi,
  uniquePrefix,
} from '../helpers/api.js';
import { testLogger } from './helpers/log.js';
import { createTestDb, type TestDb } from './helpers/pg.js';
import { cleanPrefix, plainClient } from './helpers/redis.js';
import { waitFor } from '../helpers/waitFor.js';

/** The last release that keyed trips by trip_id alone. */
const PREVIOUS_RELEASE = '1d5262d5f8336fad8467cb127f6a5273b740367f';
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PARTITIONS = 4;
const logger = testLogger();

let db: TestDb;
let previousCli: string;
const children: ChildProcess[] = [];
const stops: (() => Promise<void>)[] = [];

/**
 * The previous release's dist/, built once per checkout from git (same dependencies as this one).
 * The cache is keyed by this checkout's path too: its node_modules link points into the checkout,
 * and a cache left by a deleted clone would otherwise resolve no packages at all.
 */
function buildPreviousRelease(): string {
  const checkout = createHash('sha256').update(ROOT).digest('hex').slice(0, 8);
  const dir = join(tmpdir(), `swipe-authorizer-${PREVIOUS_RELEASE.slice(0, 12)}-${checkout}`);
  const cli = join(dir, 'dist', 'cli.js');
  if (existsSync(cli) && existsSync(join(dir, 'node_modules', 'pino'))) return cli;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const run = (cmd: string, args: string[], cwd: string) => {
    const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 240_000 });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr || r.stdout || r.error}`);
  };
  run('sh', ['-c', `git -C "${ROOT}" archive ${PREVIOUS_RELEASE} | tar -x -C "${dir}"`], ROOT);
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  run(process.execPath, ['scripts/build-lua.mjs'], dir);
  run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], dir);
  return cli;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

interface Previous {
  readonly client: ApiClient;
  readonly prefix: string;
  stop(): Promise<void>;
}

/** The previous release's api and persister as child processes on the shared Redis. */
async function startPrevious(prefix: string): Promise<Previous> {
  const port = await freePort();
  const env = {
    ...process.env,
    NODE_ENV: 'test',
    HOST: '127.0.0.1',
    PORT: String(port),
    REDIS_PREFIX: prefix,
    PARTITIONS: String(PARTITIONS),
    DATABASE_URL: db.url,
    SIGNATURE_SECRETS: SECRET,
    API_TOKENS: TOKEN,
    LOG_LEVEL: 'error',
    DECISION_TIMEOUT_MS: '800',
    FAILOPEN_ENABLED: 'false',
    PERSISTER_BLOCK_MS: '50',
    PERSISTER_CLAIM_IDLE_MS: '200',
    PERSISTER_DELIVERIES_MAX: '2',
    PERSISTER_LEASE_MS: '900',
  };
  const api = spawn(process.execPath, [previousCli, 'serve'], {
    env: { ...env, METRICS_PORT: String(await freePort()) },
    stdio: 'inherit',
  });
  const persister = spawn(process.execPath, [previousCli, 'persist'], {
    env: { ...env, METRICS_PORT: String(await freePort()) },
    stdio: 'inherit',
  });
  children.push(api, persister);
  const client = apiClient(`http://127.0.0.1:${port}`);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const up = await client.request('GET', '/readyz').catch(() => undefined);
    if (up?.status === 200) break;
    if (Date.now() > deadline) throw new Error('previous release did not become ready');
    await new Promise((r) => setTimeout(r, 100));
  }
  const stopOne = (c: ChildProcess) =>
    new Promise<void>((resolve) => {
      if (c.exitCode !== null) return resolve();
      c.once('exit', () => resolve());
      c.kill('SIGTERM');
    });
  return {
    client,
    prefix,
    stop: async () => {
      await Promise.all([stopOne(api), stopOne(persister)]);
    },
  };
}

/** Events the previous release's calls produced so far (each write that changed state). */
let expectedEvents = 0;

function written(r: Reply, ...ok: number[]): Reply {
  expect(ok, r.text).toContain(r.status);
  if (r.headers.get('idempotent-replayed') !== 'true') expectedEvents++;
  return r;
}

async function applied(): Promise<number> {
  const [row] = await db.query<{ n: string }>('select count(*) as n from applied_events');
  return Number(row?.n);
}

/** One shopper's trip as the previous release keeps it: trip, a pick, decisions, a reversal, a clearing. */
async function shop(c: ApiClient, shopper: string, trip: string, i: number): Promise<void> {
  written(await c.putTrip(shopper, trip, safewayTrip({ tax_rate_bps: 100 * i })), 201);
  written(await c.pick(shopper, trip, 'milk', { status: 'picked', quantity: 3 + (i % 4) }), 200);
  const ok = swipeBody(shopper, `${2 + (i % 3)}.00`);
  written(await c.swipe(ok), 200);
  written(await c.swipe(swipeBody(shopper, '900.00')), 402);
  if (i % 2 === 0) {
    written(await c.reverse({ transaction_id: ok.transaction_id, shopper_id: shopper, amount: '0.50' }), 200);
  } else {
    written(await c.clear({ transaction_id: ok.transaction_id, shopper_id: shopper, amount: '1.75' }), 200);
  }
}

/** Every row of every table a trip reaches, in a fixed order, without the columns the migration adds. */
async function recorded(): Promise<Record<string, unknown[]>> {
  const tables: Record<string, string> = {
    trips: 'select * from trips order by shopper_id, trip_id',
    orders: 'select trip_id, order_id, position from orders order by trip_id, order_id',
    items:
      'select trip_id, item_id, order_id, position, quantity_milli, pick_line_cents from items order by trip_id, item_id',
    authorizations: 'select * from authorizations order by authorization_id',
    reversals: 'select * from reversals order by event_id',
    clearings: 'select * from clearings order by event_id',
    ledger: 'select * from ledger_transfers order by posting_id, line',
    events: 'select * from applied_events order by event_id',
  };
  const out: Record<string, unknown[]> = {};
  for (const [name, sql] of Object.entries(tables)) out[name] = await db.query(sql);
  return out;
}

beforeAll(async () => {
  previousCli = buildPreviousRelease();
  // The previous release migrates its own (older) schema.
  db = await createTestDb(undefined, { migrate: false });
  const r = spawnSync(process.execPath, [previousCli, 'migrate'], {
    env: { ...process.env, NODE_ENV: 'test', DATABASE_URL: db.url, LOG_LEVEL: 'error' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(r.status, r.stderr).toBe(0);
}, 300_000);

afterAll(async () => {
  for (const stop of stops.reverse()) await stop().catch(() => undefined);
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await db?.drop();
});

it('expand while the previous release serves, contract after it: no row lost, trips served and rebuilt as they were', async () => {
  const shared = plainClient();
  stops.push(async () => shared.disconnect());
  const prefix = uniquePrefix('tmig');
  stops.push(() => cleanPrefix(shared, prefix));
  const previous = await startPrevious(prefix);
  stops.push(() => previous.stop());
  const c = previous.client;

  // 1. The previous release writes its history.
  const trips: { shopper: string; trip: string }[] = [];
  for (let i = 0; i < 8; i++) {
    trips.push({ shopper: `mshopper${i}`, trip: `mtrip${i}` });
    await shop(c, `mshopper${i}`, `mtrip${i}`, i);
  }
  await waitFor(
    'the previous persister to write everything',
    async () => (await applied()) === expectedEvents,
  );
  expect(await db.query('select count(*)::int as n from ledger_transfers')).not.toEqual([{ n: 0 }]);

  // 2. Expand, while it serves and persists.
  const expanded = await runMigrations(db.orm, { contract: false, logger });
  // Every migration the previous release can live with (the expand step among them); not the contract.
  expect(expanded).toContain('Migration20261204100000_trip_identity_expand');
  expect(expanded).not.toContain('Migration20261204100100_trip_identity_contract');
  for (let i = 8; i < 12; i++) {
    trips.push({ shopper: `mshopper${i}`, trip: `mtrip${i}` });
    await shop(c, `mshopper${i}`, `mtrip${i}`, i);
  }
  await waitFor('the previous persister to keep writing after expand', async () => {
    return (await applied()) === expectedEvents;
  });
  // A shopper in another partition reusing a trip id: the previous release creates it in Redis;
  // its persister's `on conflict (trip_id) do nothing` would drop it. Now it is a dead letter.
  const keys = new Keys(prefix, PARTITIONS);
  const reuser = ['mreuser0', 'mreuser1', 'mreuser2', 'mreuser3', 'mreuser4'].find(
    (s) => keys.partition(s) !== keys.partition('mshopper0'),
  ) as string;
  expect((await c.putTrip(reuser, 'mtrip0', safewayTrip())).status).toBe(201);
  await waitFor('the reused trip id to be dead-lettered', async () => {
    const rows = await db.query<{ type: string; error: string }>('select type, error from dead_letters');
    return rows.some((r) => r.type === 'trip.upserted' && /conflicts with the same trip id/.test(r.error));
  });
  // A new pod serving next to the previous release, on the same Redis: a trip it creates can be
  // neither created again (a second copy with a ceiling of its own) nor spent through an old pod.
  const early: TestApi = await startTestApi({
    REDIS_PREFIX: prefix,
    FAILOPEN_JOURNAL_PATH: join(tmpdir(), `${prefix}-early.jsonl`),
    PARTITIONS: String(PARTITIONS),
    DATABASE_URL: db.url,
    DECISION_TIMEOUT_MS: '800',
    FAILOPEN_ENABLED: 'false',
    // Upgrading from a release without the rollout flags: both off until it is gone (docs/deploy.md).
    WAL_COMPACT_PAYLOAD: 'false',
    VELOCITY_IN_TRIP_HASH: 'false',
  });
  const mixed = safewayTrip({ tax_rate_bps: 0 });
  written(await early.putTrip('mixshopper', 'mixtrip', mixed), 201);
  written(await early.pick('mixshopper', 'mixtrip', 'milk', { status: 'picked', quantity: 10 }), 200);
  expect((await c.putTrip('mixshopper', 'mixtrip', mixed)).status).toBe(409);
  const viaOld = await c.swipe(swipeBody('mixshopper', '36.00'));
  expect([viaOld.status, viaOld.json['reason']]).toEqual([402, 'NO_ACTIVE_TRIP']);
  expectedEvents++; // the old pod's decline is an event too
  written(await early.swipe(swipeBody('mixshopper', '36.00')), 200);
  const mixedView = (await early.getTrip('mixshopper', 'mixtrip')).json;
  await early.api.stop();
  early.redis.disconnect();
  trips.push({ shopper: 'mixshopper', trip: 'mixtrip' });
  await waitFor('the mixed window persisted', async () => (await applied()) === expectedEvents);

  // The trips as the previous release shows them (mixtrip: as this release does).
  const views = new Map<string, unknown>();
  for (const t of trips) {
    if (t.shopper === 'mixshopper') {
      views.set(t.shopper, mixedView);
      continue;
    }
    const view = await c.getTrip(t.shopper, t.trip);
    expect(view.status).toBe(200);
    views.set(t.shopper, view.json);
  }
  await previous.stop();
  const before = await recorded();

  // 3. Contract: every row kept and unchanged; orders and items name their shopper.
  const contracted = await runMigrations(db.orm, { contract: true, logger });
  expect(contracted).toEqual(['Migration20261204100100_trip_identity_contract']);
  expect(await recorded()).toEqual(before);
  expect(
    await db.query(
      `select count(*)::int as n from items i join trips t on t.trip_id = i.trip_id where i.shopper_id <> t.shopper_id`,
    ),
  ).toEqual([{ n: 0 }]);
  expect(await db.query('select count(*)::int as n from orders where shopper_id is null')).toEqual([
    { n: 0 },
  ]);

  // 4. This release on the same Redis: the previous release's trips from their legacy keys ...
  const h: TestApi = await startTestApi({
    REDIS_PREFIX: prefix,
    FAILOPEN_JOURNAL_PATH: join(tmpdir(), `${prefix}-new.jsonl`),
    PARTITIONS: String(PARTITIONS),
    DATABASE_URL: db.url,
    DECISION_TIMEOUT_MS: '800',
    FAILOPEN_ENABLED: 'false',
  });
  stops.push(() => h.stop());
  for (const t of trips) {
    const view = await h.getTrip(t.shopper, t.trip);
    expect({ shopper: t.shopper, status: view.status, view: view.json }).toEqual({
      shopper: t.shopper,
      status: 200,
      view: views.get(t.shopper),
    });
    // An identical PUT of a trip the previous release created is still 200.
    const i = Number(t.shopper.replace('mshopper', ''));
    const body = t.shopper === 'mixshopper' ? mixed : safewayTrip({ tax_rate_bps: 100 * i });
    expect((await h.putTrip(t.shopper, t.trip, body)).status).toBe(200);
  }
  // ... and, after Redis loses everything, from the migrated Postgres, exactly as they were.
  await cleanPrefix(shared, prefix);
  expect((await ensureHydrated(h.config, logger)).hydratedPartitions).toBeGreaterThan(0);
  for (const t of trips) {
    const view = await h.getTrip(t.shopper, t.trip);
    expect({ shopper: t.shopper, view: view.json }).toEqual({
      shopper: t.shopper,
      view: views.get(t.shopper),
    });
  }
  // The reused id's owner in Postgres is the first shopper, untouched by the dead-lettered event.
  expect(await db.query(`select shopper_id from trips where trip_id = 'mtrip0'`)).toEqual([
    { shopper_id: 'mshopper0' },
  ]);
}, 120_000);

it('a fresh install (no migration applied yet) gets every migration, the contract ones too', async () => {
  const fresh = await createTestDb(undefined, { migrate: false });
  try {
    const applied = await runMigrations(fresh.orm, { contract: false, logger, strict: true });
    expect(applied).toContain('Migration20261204100100_trip_identity_contract');
    expect(
      await fresh.query(
        `select string_agg(a.attname, ',' order by array_position(i.indkey, a.attnum)) as cols
           from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
          where i.indrelid = 'trips'::regclass and i.indisprimary`,
      ),
    ).toEqual([{ cols: 'shopper_id,trip_id' }]);
  } finally {
    await fresh.drop();
  }
});
