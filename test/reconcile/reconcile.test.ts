// Reconciliation of a generated settlement file (>= 100,000 rows, seeded)
// with breaks of every kind: every break found and classified as seeded, no
// false positives, late answers released through Redis, adjustments posted
// to a balanced ledger, and a re-run of the same file changes nothing.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { knexOf } from '../../src/db/orm.js';
import { releaseHold } from '../../src/ledger/holdExpiry.js';
import { reconcile, type ReconResult } from '../../src/reconcile/reconcile.js';
import { renderText, writeReport } from '../../src/reconcile/report.js';
import { connectRedis, createRedisClient } from '../../src/redis/client.js';
import { Keys } from '../../src/redis/keys.js';
import { ScriptRunner } from '../../src/redis/scripts.js';
import { checkLedger } from '../ledger/helpers.js';
import { createTestDb, type TestDb } from '../persister/helpers/pg.js';
import { cleanPrefix, uniquePrefix } from '../persister/helpers/redis.js';
import { generate } from './generator.js';

const SEED = Number(process.env.RECON_SEED ?? 20261121);
const BASE_ROWS = Number(process.env.RECON_BASE_ROWS ?? 100_000);
const BREAKS = 25;

let db: TestDb;
let dir: string;
const config = loadConfig({
  NODE_ENV: 'test',
  REDIS_PREFIX: uniquePrefix(),
  PARTITIONS: '8',
  SIGNATURE_SECRETS: 'test-signature-secret-0123456789',
  API_TOKENS: 'test-api-token-0123456789abcdef',
});
const redis = createRedisClient(config, { name: 'recon-test', commandTimeoutMs: 5000 }) as Redis;
const keys = new Keys(config.redisPrefix, config.partitions);
const scripts = new ScriptRunner(redis, undefined, undefined);
const release = async (a: Parameters<typeof releaseHold>[1]) => {
  const r = await releaseHold({ config, keys, scripts }, a, 'reconciliation', Date.now());
  return { released: r.outcome === 'released', eventId: r.eventId };
};

async function walLength(): Promise<number> {
  let n = 0;
  for (const k of keys.allWals()) n += await redis.xlen(k);
  return n;
}

async function counts(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of ['reconciliation_runs', 'reconciliation_items', 'ledger_postings', 'ledger_entries']) {
    const [r] = await db.query<{ n: string }>(`select count(*)::text as n from ${t}`);
    out[t] = Number(r?.n);
  }
  out['wal'] = await walLength();
  return out;
}

beforeAll(async () => {
  db = await createTestDb();
  await connectRedis(redis);
  dir = mkdtempSync(join(tmpdir(), 'sa-recon-'));
});

afterAll(async () => {
  await cleanPrefix(redis, config.redisPrefix);
  redis.disconnect();
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

describe('reconcile', () => {
  it(`finds and classifies every seeded break in ${BASE_ROWS}+ rows, no false positives (seed ${SEED})`, async () => {
    const g = generate(SEED, BASE_ROWS, BREAKS);
    expect(g.rows).toBeGreaterThanOrEqual(100_000);
    const file = join(dir, 'settlement.csv');
    writeFileSync(file, g.csv);
    await g.insert(knexOf(db.orm));

    const result: ReconResult = await reconcile(knexOf(db.orm), file, 'settlement.csv', {
      releaseHold: release,
    });
    console.log(
      `reconcile: ${result.rows} rows, ${result.items.length} items in ${result.durationMs} ms (seed ${SEED})`,
    );
    expect(result.replayed).toBe(false);
    expect(result.rows).toBe(g.rows);

    const got = new Map(result.items.map((it) => [it.rowKey, { kind: it.kind, klass: it.klass }]));
    const missing = [...g.expected].filter(([key]) => !got.has(key));
    const falsePositives = [...got].filter(([key]) => !g.expected.has(key));
    const misclassified = [...g.expected].filter(([key, e]) => {
      const x = got.get(key);
      return x !== undefined && (x.kind !== e.kind || x.klass !== e.klass);
    });
    expect({ missing, falsePositives, misclassified }).toEqual({
      missing: [],
      falsePositives: [],
      misclassified: [],
    });
    // Every kind was seeded and found.
    const kinds = new Set(result.items.map((it) => it.kind));
    for (const kind of [
      'settled_without_authorization',
      'authorized_never_settled',
      'amount_differs',
      'duplicate_settlement',
      'failopen_missing_from_wal',
      'currency_differs',
    ]) {
      expect(kinds.has(kind as never), kind).toBe(true);
    }
    for (const klass of ['auto_adjusted', 'needs_review', 'unclassified'])
      expect(
        result.items.some((it) => it.klass === klass),
        klass,
      ).toBe(true);

    // Late answers never settled: released through Redis (one hold.expired each).
    expect(await walLength()).toBe(g.lateHeld);
    // Adjustments: one balanced posting per auto-adjusted file row.
    const autoRows = result.items.filter((it) => it.klass === 'auto_adjusted' && it.rowNo !== null);
    const [posted] = await db.query<{ n: string }>(
      "select count(*)::text as n from ledger_postings where kind = 'adjustment'",
    );
    expect(Number(posted?.n)).toBe(autoRows.length);
    const ledger = await checkLedger(db);
    expect(ledger.unbalancedPostings).toEqual([]);
    for (const total of Object.values(ledger.totals)) expect(total).toBe(0);

    // Report files.
    const paths = await writeReport(join(dir, 'out'), result, 'settlement.csv');
    expect(paths.json).toMatch(/report\.json$/);
    expect(renderText(result, 'settlement.csv')).toContain('amount_differs');

    // Re-running the same file changes nothing and answers the same.
    const before = await counts();
    const again = await reconcile(knexOf(db.orm), file, 'settlement.csv', { releaseHold: release });
    expect(again.replayed).toBe(true);
    expect(await counts()).toEqual(before);
    expect(new Map(again.items.map((it) => [it.rowKey, it.kind]))).toEqual(
      new Map(result.items.map((it) => [it.rowKey, it.kind])),
    );
  }, 170_000);
});
