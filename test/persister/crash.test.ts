// Crash safety: the real api takes a shopping mix over HTTP while the
// persister (a child process, from dist/) is SIGKILLed at least 20 times: at
// random moments (mid-batch, idle, mid-claim), right before COMMIT, and right
// after COMMIT before XACK. Afterwards Postgres holds exactly one row per WAL
// event and every trip's totals equal Redis.
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { TestApi } from '../helpers/api.js';
import { closeSome, createTrips, drive, newBooks, startCountingApi, totalEvents } from './helpers/load.js';
import { createTestDb, type TestDb } from './helpers/pg.js';
import { type Child, ensureBuilt, spawnPersister } from './helpers/proc.js';
import { cleanPrefix, plainClient, uniquePrefix } from './helpers/redis.js';

const PARTITIONS = 8;
const KILLS_MIN = 24;
const METRICS_PORT = 18_210;

let db: TestDb;
let api: TestApi;
let redis: Redis;
let prefix: string;
const children: Child[] = [];

function persisterEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    REDIS_PREFIX: prefix,
    PARTITIONS: String(PARTITIONS),
    DATABASE_URL: db.url,
    METRICS_PORT: String(METRICS_PORT),
    HOST: '127.0.0.1',
    PERSISTER_BATCH_EVENTS_MAX: '100',
    PERSISTER_BLOCK_MS: '50',
    PERSISTER_CLAIM_IDLE_MS: '200',
    PERSISTER_LEASE_MS: '450',
    PERSISTER_DELIVERIES_MAX: '1000',
    SHUTDOWN_GRACE_MS: '2000',
    SIGNATURE_SECRETS: 'unused-signature-secret-0123456789',
    API_TOKENS: 'unused-api-token-0123456789abcdef',
    ...extra,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  ensureBuilt();
  db = await createTestDb();
  prefix = uniquePrefix();
  redis = plainClient();
  api = await startCountingApi(prefix, PARTITIONS, db.url);
});

afterAll(async () => {
  for (const c of children)
    if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
  await api?.stop();
  await cleanPrefix(redis, prefix);
  redis.disconnect();
  await db?.drop();
});

async function lateFlagsInRedis(): Promise<number> {
  let n = 0;
  for (let p = 0; p < PARTITIONS; p++) {
    let cursor = '0';
    do {
      const [next, found] = await redis.scan(cursor, 'MATCH', api.keys.auth(p, '*'), 'COUNT', 1000);
      cursor = next;
      for (const key of found) if ((await redis.hexists(key, 'late_ms')) === 1) n++;
    } while (cursor !== '0');
  }
  return n;
}

it('survives 20+ SIGKILLs at random moments with no event lost or doubled', {
  timeout: 180_000,
}, async () => {
  const books = newBooks();
  await createTrips(api, books, 'crash', 40);
  let loadDone = false;
  const load = drive(api, books, 6, 400, () => loadDone);

  let kills = 0;
  const killedAt: Record<string, number> = { random: 0, beforeCommit: 0, afterCommit: 0 };
  for (let round = 0; kills < KILLS_MIN; round++) {
    const mode = (['random', 'beforeCommit', 'afterCommit'] as const)[round % 3] ?? 'random';
    const child = spawnPersister(
      persisterEnv(mode === 'random' ? {} : { PERSISTER_TEST_CRASH: `${mode}:0.25` }),
    );
    children.push(child);
    const started = Date.now();
    // Random kills land anywhere: startup, lease wait, claim, mid-batch, between batches.
    const timer = setTimeout(
      () => child.proc.kill('SIGKILL'),
      mode === 'random' ? 300 + Math.random() * 1200 : 4000,
    );
    const { signal, code } = await child.exited;
    clearTimeout(timer);
    if (signal === 'SIGKILL') {
      kills++;
      // A fault-injection round counts only when the process killed itself at that point.
      const self = mode !== 'random' && Date.now() - started < 3900;
      const key = mode === 'random' || self ? mode : 'random';
      killedAt[key] = (killedAt[key] ?? 0) + 1;
    } else {
      throw new Error(`persister exited on its own (code ${code}): ${child.output()}`);
    }
    if (round > 200) throw new Error('too many rounds');
  }
  loadDone = true;
  await load;
  await closeSome(api, books, 0.25);
  expect(books.ambiguous).toBe(0);

  // An approval answered after the processor's deadline (a starved machine) is flagged by the api
  // itself (authorization.late); Redis knows exactly which: late_ms on the authorization hash.
  const late = await lateFlagsInRedis();
  if (late > 0) books.events['authorization.late'] = late;

  // A last persister, left alone, drains everything.
  const final = spawnPersister(persisterEnv());
  children.push(final);
  const expected = totalEvents(books);
  const deadline = Date.now() + 60_000;
  let persisted = 0;
  while (Date.now() < deadline) {
    const [row] = await db.query<{ n: string }>('select count(*) as n from applied_events');
    persisted = Number(row?.n);
    if (persisted >= expected) break;
    await sleep(200);
  }
  // Give a straggler (a doubled write would show up here) a moment, then stop cleanly.
  await sleep(500);
  final.proc.kill('SIGTERM');
  const exit = await final.exited;
  expect(exit.code, final.output()).toBe(0);

  // Exactly one row per event: by type, and per authorization id.
  const byType = await db.query<{ type: string; n: string }>(
    'select type, count(*) as n from applied_events group by type',
  );
  const got = Object.fromEntries(byType.map((r) => [r.type, Number(r.n)]));
  expect(got).toEqual(books.events);
  const auths = await db.query<{ authorization_id: string }>('select authorization_id from authorizations');
  expect(auths.length).toBe(books.authorizationIds.size);
  expect(new Set(auths.map((a) => a.authorization_id))).toEqual(books.authorizationIds);
  const [rev] = await db.query<{ n: string }>('select count(*) as n from reversals');
  expect(Number(rev?.n)).toBe(books.events['reversal.applied'] ?? 0);
  const [dead] = await db.query<{ n: string }>('select count(*) as n from dead_letters');
  expect(Number(dead?.n)).toBe(0);

  // Per-trip totals: Postgres equals Redis.
  const rows = await db.query<Record<string, string>>(
    'select trip_id, shopper_id, status, picked_cents, approved_cents, reversed_cents, authorized_cents from trips',
  );
  expect(rows.length).toBe(books.trips.length);
  for (const row of rows) {
    const p = api.keys.partition(String(row.shopper_id));
    const h = await redis.hgetall(api.keys.trip(p, String(row.shopper_id), String(row.trip_id)));
    expect(
      {
        status: row.status,
        picked: row.picked_cents,
        approved: row.approved_cents,
        reversed: row.reversed_cents,
        authorized: row.authorized_cents,
      },
      String(row.trip_id),
    ).toEqual({
      status: h.status,
      picked: h.picked_cents,
      approved: h.approved_cents,
      reversed: h.reversed_cents,
      authorized: h.authorized_cents,
    });
  }

  // Acked and trimmed: nothing left in the WAL.
  let left = 0;
  for (let p = 0; p < PARTITIONS; p++) left += await redis.xlen(api.keys.wal(p));
  expect(left).toBe(0);
  console.log(
    `[crash] kills=${kills} (random ${killedAt.random}, before commit ${killedAt.beforeCommit}, after commit ${killedAt.afterCommit}); ` +
      `events=${expected} persisted=${persisted} authorizations=${auths.length}`,
  );
  expect(kills).toBeGreaterThanOrEqual(20);
  expect(killedAt.beforeCommit).toBeGreaterThan(0);
  expect(killedAt.afterCommit).toBeGreaterThan(0);
});
