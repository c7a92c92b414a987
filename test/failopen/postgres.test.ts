// The Postgres half of "every fail-open approval appears exactly once": a
// frozen PRIVATE Redis (16540), fail-open approvals, replay, and the real
// persister (in process) into a fresh database (failopen_replays table).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { type RunningPersister, startPersister } from '../../src/persister/commands.js';
import { EVENT_TYPES } from '../../src/persister/events.js';
import { newId, safewayTrip, startTestApi, swipeBody, type TestApi } from '../helpers/api.js';
import { createTestDb, type TestDb } from '../persister/helpers/pg.js';
import { type PrivateRedis, startPrivateRedis } from './privateRedis.js';

const supported = (EVENT_TYPES as readonly string[]).includes('failopen.replayed');
const dir = mkdtempSync(join(tmpdir(), 'sa-fo-pg-'));
let redis: PrivateRedis | undefined;
let db: TestDb | undefined;
let h: TestApi | undefined;
let persister: RunningPersister | undefined;

beforeAll(async () => {
  if (!supported) return;
  redis = await startPrivateRedis(16540);
  db = await createTestDb();
  h = await startTestApi({
    REDIS_URL: redis.url,
    DATABASE_URL: db.url,
    FAILOPEN_JOURNAL_PATH: join(dir, 'j.jsonl'),
  });
  for (let p = 0; p < h.config.partitions; p++)
    await h.redis.hset(`${h.keys.base(p)}meta`, 'initialized_ms', Date.now());
  persister = await startPersister(
    h.config,
    createLogger('silent'),
    createMetrics({ defaultMetrics: false }),
  );
});
afterAll(async () => {
  redis?.thaw();
  await persister?.stop();
  await h?.stop();
  await db?.drop();
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test.skipIf(!supported)(
  'each fail-open approval is in Postgres exactly once, none dead-lettered',
  async () => {
    const api = h as TestApi;
    const pg = db as TestDb;
    const shoppers: string[] = [];
    for (let i = 0; i < 4; i++) {
      const shopper = newId('s');
      const trip = newId('trip');
      expect((await api.putTrip(shopper, trip, safewayTrip())).status).toBe(201);
      expect(
        (await api.pick(shopper, trip, 'milk', { status: 'picked', quantity: 10, unit_price: '3.49' }))
          .status,
      ).toBe(200);
      shoppers.push(shopper);
    }
    (redis as PrivateRedis).freeze();
    const approved: string[] = [];
    try {
      for (let i = 0; i < 40; i++) {
        const r = await api.swipe(swipeBody(shoppers[i % shoppers.length] as string, '3.00'));
        if (r.json['mode'] === 'fail_open') approved.push(r.json['authorization_id'] as string);
      }
    } finally {
      (redis as PrivateRedis).thaw();
    }
    expect(approved.length).toBeGreaterThan(20);
    await until(
      'journal drained',
      async () => (await api.api.metrics.failopenJournalPending.get()).values[0]?.value === 0,
    );
    // The persister trims the WAL after commit: Postgres is read, not the stream.
    type Replay = { authorization_id: string; outcome: string; redis_authorization_id: string | null };
    let replays: Replay[] = [];
    await until('persisted', async () => {
      replays = await pg.query<Replay>(
        'select authorization_id, outcome, redis_authorization_id from failopen_replays where authorization_id = any(?)',
        [approved],
      );
      return new Set(replays.map((r) => r.authorization_id)).size === approved.length;
    });
    expect(await pg.query('select event_id from dead_letters')).toEqual([]);
    // Exactly once per fail-open approval.
    expect(replays.map((r) => r.authorization_id).sort()).toEqual([...approved].sort());
    // Every approval not in conflict with Redis is an authorization row in fail_open mode.
    const recorded = replays
      .filter((r) => r.outcome === 'applied' || r.redis_authorization_id === r.authorization_id)
      .filter((r) => r.outcome !== 'conflict')
      .map((r) => r.authorization_id);
    const rows = await pg.query<{ authorization_id: string; mode: string }>(
      'select authorization_id, mode from authorizations where authorization_id = any(?)',
      [recorded],
    );
    expect(rows.map((r) => r.authorization_id).sort()).toEqual([...recorded].sort());
    for (const r of rows) expect(r.mode).toBe('fail_open');
  },
);
