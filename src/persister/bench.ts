#!/usr/bin/env node
// Persister throughput benchmark (not a test): fills the WAL of a fresh
// namespace with a realistic event mix, then times one persister draining it
// into a fresh database, per batch size. Prints the figures and writes the
// "Persister" section of BENCHMARKS.md (other sections are left alone).
//
//   npm run build && node dist/persister/bench.js [events] [batch sizes, comma-separated]
//
// Needs the local Redis and Postgres (REDIS_URL, DATABASE_URL as for the service).
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../config/config.js';
import { runMigrations } from '../db/migrate.js';
import { createOrm, knexOf } from '../db/orm.js';
import { createLogger } from '../observability/logger.js';
import { createMetrics } from '../observability/metrics.js';
import { connectRedis, createRedisClient, type RedisClient } from '../redis/client.js';
import { Keys } from '../redis/keys.js';
import { Persister } from './consumer.js';

const PARTITIONS = 64;
const XADD_PIPELINE = 1000;

/** One trip's life: 1 upsert, 4 picks, 8 decisions (6 approved), 1 reversal, 1 close = 15 events. */
function tripEvents(shopperId: string, tripId: string, partition: number, now: number): [string, unknown][] {
  const out: [string, unknown][] = [];
  const items = [0, 1, 2, 3].map((i) => ({
    item_id: `i${i}`,
    quantity_milli: 2000,
    unit: 'each',
    unit_price_cents: 250,
    estimated_cents: 500,
  }));
  out.push([
    'trip.upserted',
    {
      trip_id: tripId,
      shopper_id: shopperId,
      partition,
      merchant: { name: 'Safeway', address: '123 Main St', lat: '37.77', lng: '-122.41' },
      currency: 'USD',
      tax_rate_bps: 925,
      tolerance_bps: 500,
      tolerance_cents: 200,
      hold_cents: null,
      estimated_cents: 2000,
      orders: [{ order_id: 'o-1', items }],
      at_ms: now,
    },
  ]);
  let picked = 0;
  for (const it of items) {
    picked += 500;
    out.push([
      'item.updated',
      {
        trip_id: tripId,
        shopper_id: shopperId,
        item_id: it.item_id,
        status: 'picked',
        quantity_milli: 2000,
        unit_price_cents: 250,
        line_cents: 500,
        replacement_item_id: null,
        customer_approved: false,
        picked_cents: picked,
        at_ms: now,
      },
    ]);
  }
  let authorized = 0;
  let firstTxn = '';
  let firstAuth = '';
  for (let i = 0; i < 8; i++) {
    const approved = i < 6;
    if (approved) authorized += 100;
    const id = randomUUID();
    const txn = `txn_${randomBytes(8).toString('hex')}`;
    if (i === 0) {
      firstTxn = txn;
      firstAuth = id;
    }
    out.push([
      'authorization.decided',
      {
        authorization_id: id,
        idempotency_key: `t:${txn}`,
        fingerprint: randomBytes(16).toString('hex'),
        signature: randomBytes(32).toString('hex'),
        status: approved ? 200 : 402,
        transaction_id: txn,
        shopper_id: shopperId,
        trip_id: tripId,
        decision: approved ? 'approved' : 'declined',
        reason: approved ? null : 'AMOUNT_EXCEEDS_ALLOWANCE',
        mode: 'normal',
        amount_cents: 100,
        remaining_cents: 1000,
        authorized_cents: authorized,
        currency: 'USD',
        merchant_name: 'SAFEWAY #1234',
        merchant_address: '123 MAIN STREET',
        lat: 37.77,
        lng: -122.41,
        at_ms: now,
      },
    ]);
  }
  authorized -= 50;
  out.push([
    'reversal.applied',
    {
      reversal_key: `${firstTxn}:-`,
      authorization_id: firstAuth,
      transaction_id: firstTxn,
      shopper_id: shopperId,
      trip_id: tripId,
      amount_cents: 50,
      reversed_cents: 50,
      held_cents: 50,
      authorized_cents: authorized,
      at_ms: now,
    },
  ]);
  out.push([
    'trip.closed',
    {
      trip_id: tripId,
      shopper_id: shopperId,
      picked_cents: picked,
      authorized_cents: authorized,
      at_ms: now,
    },
  ]);
  return out;
}

async function fill(client: RedisClient, keys: Keys, events: number): Promise<number> {
  let written = 0;
  let pipe = client.pipeline();
  let queued = 0;
  const now = Date.now();
  for (let t = 0; written < events; t++) {
    const shopperId = `bench-s${t}`;
    const p = keys.partition(shopperId);
    for (const [type, d] of tripEvents(shopperId, `bench-t${t}-${randomBytes(3).toString('hex')}`, p, now)) {
      pipe.xadd(keys.wal(p), '*', 'e', randomUUID(), 't', type, 'd', JSON.stringify(d));
      written++;
      if (++queued >= XADD_PIPELINE) {
        await pipe.exec();
        pipe = client.pipeline();
        queued = 0;
      }
    }
  }
  if (queued > 0) await pipe.exec();
  return written;
}

interface Run {
  batch: number;
  events: number;
  seconds: number;
  eventsPerS: number;
  batches: number;
  batchP50Ms: number;
  batchP99Ms: number;
  /** 1-minute load average when the run ended: other work on the machine shows here. */
  load: number;
}

async function runOnce(batch: number, events: number): Promise<Run> {
  const logger = createLogger('warn');
  const prefix = `bench${randomBytes(3).toString('hex')}`;
  const baseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const dbName = `sa_bench_${randomBytes(4).toString('hex')}`;
  const admin = await createOrm({ databaseUrl: baseUrl, poolMax: 1 });
  await knexOf(admin).raw(`create database ${dbName}`);
  const url = new URL(baseUrl);
  url.pathname = `/${dbName}`;
  const config = loadConfig({
    ...process.env,
    NODE_ENV: 'test',
    REDIS_PREFIX: prefix,
    PARTITIONS: String(PARTITIONS),
    DATABASE_URL: url.toString(),
    PERSISTER_BATCH_EVENTS_MAX: String(batch),
    PERSISTER_BLOCK_MS: '100',
    SIGNATURE_SECRETS: 'bench-signature-secret-0123456789',
    API_TOKENS: 'bench-api-token-0123456789abcdef',
  });
  const orm = await createOrm({ databaseUrl: config.databaseUrl, poolMax: 4 });
  const keys = new Keys(prefix, PARTITIONS);
  const streamClient = createRedisClient(config, { name: 'bench-stream', commandTimeoutMs: 30_000 });
  const controlClient = createRedisClient(config, { name: 'bench-control', commandTimeoutMs: 30_000 });
  try {
    await runMigrations(orm);
    await connectRedis(streamClient);
    await connectRedis(controlClient);
    const written = await fill(controlClient, keys, events);
    const metrics = createMetrics({ defaultMetrics: false });
    const persister = new Persister({ config, logger, metrics, orm, streamClient, controlClient });
    const started = process.hrtime.bigint();
    await persister.start();
    while (persister.committedEvents < written) await new Promise((r) => setTimeout(r, 5));
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    await persister.stop();
    const h = await metrics.persisterBatchDuration.get();
    const buckets = h.values.filter((v) => v.metricName?.endsWith('_bucket'));
    const total = persister.batches;
    const quantile = (q: number) => {
      const b = buckets.find((v) => v.value >= q * total);
      return b === undefined ? Number.NaN : Number(b.labels.le) * 1000;
    };
    return {
      batch,
      events: written,
      seconds,
      eventsPerS: written / seconds,
      batches: total,
      batchP50Ms: quantile(0.5),
      batchP99Ms: quantile(0.99),
      load: loadavg()[0] ?? Number.NaN,
    };
  } finally {
    // Remove the namespace (never FLUSH a shared server) and the database.
    let cursor = '0';
    do {
      const [next, found] = (await controlClient.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000)) as [
        string,
        string[],
      ];
      cursor = next;
      if (found.length > 0) await controlClient.unlink(...found);
    } while (cursor !== '0');
    await controlClient.del(`${prefix}:persisters`);
    streamClient.disconnect();
    controlClient.disconnect();
    await orm.close(true);
    await knexOf(admin).raw(`drop database if exists ${dbName} with (force)`);
    await admin.close(true);
  }
}

function writeSection(runs: Run[], events: number): void {
  const file = join(process.cwd(), 'BENCHMARKS.md');
  const lines = [
    '## Persister',
    '',
    `Measured by \`node dist/persister/bench.js\` on ${new Date().toISOString().slice(0, 10)}: ${cpus().length} cores ` +
      `(${cpus()[0]?.model ?? 'unknown CPU'}), local Redis and Postgres (default settings, synchronous commit on). ` +
      `${events} WAL events pre-filled over ${PARTITIONS} partitions (per trip: 1 trip.upserted, 4 item.updated, ` +
      '8 authorization.decided, 1 reversal.applied, 1 trip.closed), drained by one persister process: read, two ' +
      'concurrent transactions per batch (partitions split; multi-row `INSERT ... SELECT FROM json_to_recordset ... ' +
      'ON CONFLICT DO NOTHING`), commit, XACK, XTRIM MINID. Time from start to the last commit. The machine is ' +
      "shared: a load average above ~1 means other engineers' work ran at the same time.",
    '',
    '| batch events max | events | seconds | events/s | batches | batch p50 ms | batch p99 ms | load avg (1 min) |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...runs.map(
      (r) =>
        `| ${r.batch} | ${r.events} | ${r.seconds.toFixed(2)} | ${Math.round(r.eventsPerS)} | ${r.batches} | ` +
        `≤ ${r.batchP50Ms} | ≤ ${r.batchP99Ms} | ${r.load.toFixed(1)} |`,
    ),
    '',
    "Requirement: at least twice the api's peak decision rate (target ~25k decisions/s on 2 cores, so 50k events/s).",
    '',
  ];
  const section = lines.join('\n');
  let text = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n\n';
  const start = text.indexOf('## Persister');
  if (start >= 0) {
    const next = text.indexOf('\n## ', start + 1);
    text = text.slice(0, start) + section + (next >= 0 ? text.slice(next + 1) : '');
  } else {
    text = `${text.trimEnd()}\n\n${section}`;
  }
  writeFileSync(file, text);
}

async function main(): Promise<void> {
  const events = Number(process.argv[2] ?? 150_000);
  const batches = (process.argv[3] ?? '500,2000,5000').split(',').map(Number);
  const runs: Run[] = [];
  for (const b of batches) {
    const r = await runOnce(b, events);
    console.log(
      `persister batch=${b}: ${r.events} events in ${r.seconds.toFixed(2)} s = ${Math.round(r.eventsPerS)} events/s ` +
        `(${r.batches} batches, p50 <= ${r.batchP50Ms} ms, p99 <= ${r.batchP99Ms} ms)`,
    );
    runs.push(r);
  }
  if (process.env.BENCH_NO_WRITE !== 'true') writeSection(runs, events);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
