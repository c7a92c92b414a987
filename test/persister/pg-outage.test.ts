// Postgres stopped for 30 s under load (a private server, stopped and started
// with pg_ctl): decisions carry on at unchanged latency (the api never touches
// Postgres), the WAL grows, and the persister catches up afterwards with
// nothing lost.
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { type RunningPersister, startPersister } from '../../src/persister/commands.js';
import type { TestApi } from '../helpers/api.js';
import { createTrips, drive, newBooks, percentile, startCountingApi, totalEvents } from './helpers/load.js';
import { testLogger } from './helpers/log.js';
import { createTestDb, type PrivatePostgres, privatePostgres, type TestDb } from './helpers/pg.js';
import { cleanPrefix, plainClient, uniquePrefix } from './helpers/redis.js';

const PARTITIONS = 8;
const PG_PORT = 15_410;
const OUTAGE_MS = 30_000;

let pg: PrivatePostgres;
let db: TestDb;
let api: TestApi;
let redis: Redis;
let prefix: string;
let persister: RunningPersister | undefined;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  pg = privatePostgres(PG_PORT);
  db = await createTestDb(pg.url);
  prefix = uniquePrefix();
  redis = plainClient();
  api = await startCountingApi(prefix, PARTITIONS, db.url);
});

afterAll(async () => {
  await persister?.stop().catch(() => undefined);
  await api?.stop();
  await cleanPrefix(redis, prefix);
  redis.disconnect();
  await db?.orm.close(true).catch(() => undefined);
  pg?.destroy();
});

async function walLength(): Promise<number> {
  let n = 0;
  for (let p = 0; p < PARTITIONS; p++) n += await redis.xlen(api.keys.wal(p));
  return n;
}

it('keeps deciding while Postgres is down for 30 s, then catches up with nothing lost', {
  timeout: 150_000,
}, async () => {
  const config = loadConfig({
    NODE_ENV: 'test',
    REDIS_PREFIX: prefix,
    PARTITIONS: String(PARTITIONS),
    DATABASE_URL: db.url,
    PERSISTER_BATCH_EVENTS_MAX: '500',
    PERSISTER_BLOCK_MS: '100',
    PERSISTER_CLAIM_IDLE_MS: '1000',
    PERSISTER_LEASE_MS: '3000',
    SHUTDOWN_GRACE_MS: '3000',
    SIGNATURE_SECRETS: 'unused-signature-secret-0123456789',
    API_TOKENS: 'unused-api-token-0123456789abcdef',
  });
  const metrics = createMetrics({ defaultMetrics: false });
  persister = await startPersister(config, testLogger(), metrics);

  const books = newBooks();
  await createTrips(api, books, 'pgdown', 30);
  let phase: 'before' | 'outage' | 'after' | 'done' = 'before';
  const marks: Record<string, number> = {};
  const load = drive(api, books, 4, 300, () => phase === 'done');

  await sleep(2_000); // warm-up, not measured
  marks.warm = books.latenciesMs.length;
  await sleep(5_000);
  marks.before = books.latenciesMs.length;
  const walBefore = await walLength();
  pg.stop();
  phase = 'outage';
  await sleep(OUTAGE_MS);
  marks.outage = books.latenciesMs.length;
  const walDuring = await walLength();
  const gauge = await metrics.walPending.get();
  const pendingGauge = gauge.values.reduce((s, v) => s + v.value, 0);
  pg.start();
  phase = 'after';
  await sleep(3_000);
  phase = 'done';
  await load;

  const before = books.latenciesMs.slice(marks.warm, marks.before);
  const during = books.latenciesMs.slice(marks.before, marks.outage);
  const report = {
    beforeP50: percentile(before, 50),
    beforeP99: percentile(before, 99),
    outageP50: percentile(during, 50),
    outageP99: percentile(during, 99),
    swipesDuringOutage: during.length,
    walBefore,
    walDuring,
  };

  const expected = totalEvents(books);
  const started = Date.now();
  let persisted = 0;
  while (Date.now() - started < 60_000) {
    const [row] = await db
      .query<{ n: string }>('select count(*) as n from applied_events')
      .catch(() => [{ n: '0' }]);
    persisted = Number(row?.n);
    if (persisted >= expected) break;
    await sleep(200);
  }
  const catchUpMs = Date.now() - started;
  console.log(
    `[pg-outage] swipe latency ms: before p50=${report.beforeP50.toFixed(2)} p99=${report.beforeP99.toFixed(2)}; ` +
      `Postgres down p50=${report.outageP50.toFixed(2)} p99=${report.outageP99.toFixed(2)} (${report.swipesDuringOutage} swipes); ` +
      `WAL ${walBefore} -> ${walDuring} entries (gauge ${pendingGauge}); caught up ${expected} events ${catchUpMs} ms after restart+3s`,
  );

  expect(books.ambiguous).toBe(0);
  expect(report.swipesDuringOutage).toBeGreaterThan(1000);
  expect(report.outageP99).toBeLessThan(report.beforeP99 * 3 + 10);
  expect(walDuring).toBeGreaterThan(walBefore + 1000);
  expect(pendingGauge).toBeGreaterThan(1000);
  expect(persisted).toBe(expected);
  const byType = await db.query<{ type: string; n: string }>(
    'select type, count(*) as n from applied_events group by type',
  );
  expect(Object.fromEntries(byType.map((r) => [r.type, Number(r.n)]))).toEqual(books.events);
  const auths = await db.query<{ authorization_id: string }>('select authorization_id from authorizations');
  expect(new Set(auths.map((a) => a.authorization_id))).toEqual(books.authorizationIds);
  const [dead] = await db.query<{ n: string }>('select count(*) as n from dead_letters');
  expect(Number(dead?.n)).toBe(0);
  for (const row of await db.query<Record<string, string>>('select * from trips')) {
    const h = await redis.hgetall(
      api.keys.trip(api.keys.partition(String(row.shopper_id)), String(row.shopper_id), String(row.trip_id)),
    );
    expect([row.picked_cents, row.authorized_cents, row.approved_cents, row.reversed_cents]).toEqual([
      h.picked_cents,
      h.authorized_cents,
      h.approved_cents,
      h.reversed_cents,
    ]);
  }
  const deadlineTrim = Date.now() + 5_000;
  while (Date.now() < deadlineTrim && (await walLength()) > 0) await sleep(100);
  expect(await walLength()).toBe(0);
});
