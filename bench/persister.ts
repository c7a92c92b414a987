#!/usr/bin/env node
// Persister throughput benchmark (not a test): starts N real `persist`
// processes (node dist/cli.js persist) on a fresh namespace and database, waits
// until they have split the partition leases, freezes them (SIGSTOP), fills
// the WAL with a realistic event mix, lets them go (SIGCONT) and times until
// Postgres holds every event: the persisters' capacity on this machine, per
// batch size and process count. Prints the figures and writes
// the "Persister" section of BENCHMARKS.md (other sections are left alone).
//
//   npm run bench:persister -- [events] [batch sizes] [process counts]
//   e.g. npm run bench:persister -- 100000 2000,5000 1,2
//
// Needs the local Redis and Postgres (REDIS_URL, DATABASE_URL as for the service).
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tripUpsertedPayload } from './walEvents.js';
import {
  cpuOfComm,
  cpuSeconds,
  machineBusySeconds,
  type Proc,
  scrapeHistogram,
  sleep,
  startProc,
  stopProc,
} from './procs.js';
import { loadConfig } from '../src/config/config.js';
import { uuidv7, uuidv7Hex } from '../src/domain/ids.js';
import { runMigrations } from '../src/db/migrate.js';
import { createOrm, knexOf } from '../src/db/orm.js';
import { createLogger } from '../src/observability/logger.js';
import { connectRedis, createRedisClient, type RedisClient } from '../src/redis/client.js';
import { Keys } from '../src/redis/keys.js';
import { hydrateMissing } from '../src/persister/hydrate.js';
import { waitForLeaseSplit } from '../src/persister/leases.js';

const PARTITIONS = 64;
const XADD_PIPELINE = 1000;
const METRICS_PORT_BASE = 18460;
/** Long enough to outlive the fill while the persisters are frozen (SIGSTOP). */
const LEASE_MS = 20_000;
// Compiled to .bench-build/bench/ (bench/tsconfig.json); the persister under test is the real build in dist/.
const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'cli.js');
const RESULTS_DIR = join(process.cwd(), 'bench-results');
/**
 * Extra node flags for the persister processes, e.g. BENCH_PERSISTER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/p";
 * BENCH_SHOW_LOGS=1 prints each persister's last log lines after its run.
 */
const NODE_ARGS = (process.env.BENCH_PERSISTER_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
/**
 * Ids as the api makes them (time-ordered UUIDv7, src/domain/ids.ts);
 * BENCH_IDS=v4 uses random v4 ids, as the api did before, for comparison.
 */
const RANDOM_IDS = process.env.BENCH_IDS === 'v4';
const newId = (): string => (RANDOM_IDS ? randomUUID() : uuidv7());
const newIdHex = (): string => (RANDOM_IDS ? randomUUID().replaceAll('-', '') : uuidv7Hex());

/**
 * Decisions per trip (3 in 4 approved). The default 8 is a trip's life. The api's own WAL under
 * `npm run bench` has ~500 per trip, 2,000 trips swiped at once, so every batch touches many
 * trip rows: BENCH_DECISIONS_PER_TRIP=75 BENCH_INTERLEAVE=1 costs about as much per event.
 */
const DECISIONS_PER_TRIP = Number(process.env.BENCH_DECISIONS_PER_TRIP ?? 8);
/** BENCH_INTERLEAVE=1: trips take turns in the WAL (as in the api's: many shoppers at once). */
const INTERLEAVE = process.env.BENCH_INTERLEAVE === '1';

/** One trip's life: 1 upsert, 4 picks, DECISIONS_PER_TRIP decisions, 1 reversal, 1 close (8 decisions: 15 events). */
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
    tripUpsertedPayload({ tripId, shopperId, partition, items, estimatedCents: 2000, atMs: now }),
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
  for (let i = 0; i < DECISIONS_PER_TRIP; i++) {
    const approved = i % 4 !== 3;
    if (approved) authorized += 100;
    const id = `auth_${newIdHex()}`;
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
  const add = async (p: number, type: string, d: unknown) => {
    pipe.xadd(keys.wal(p), '*', 'e', newId(), 't', type, 'd', JSON.stringify(d));
    written++;
    if (++queued >= XADD_PIPELINE) {
      await pipe.exec();
      pipe = client.pipeline();
      queued = 0;
    }
  };
  // Every trip's events in order; trips one after another, or (INTERLEAVE) taking turns, as
  // many shoppers swiping at once do: then every batch touches many trips, not a few.
  const trips: { p: number; events: [string, unknown][] }[] = [];
  for (let t = 0, n = 0; n < events; t++) {
    const shopperId = `bench-s${t}`;
    const p = keys.partition(shopperId);
    const list = tripEvents(shopperId, `bench-t${t}-${randomBytes(3).toString('hex')}`, p, now).slice(
      0,
      events - n,
    );
    n += list.length;
    trips.push({ p, events: list });
  }
  if (!INTERLEAVE) {
    for (const t of trips) for (const [type, d] of t.events) await add(t.p, type, d);
  } else {
    for (let i = 0; written < events; i++)
      for (const t of trips) {
        const e = t.events[i];
        if (e !== undefined) await add(t.p, e[0], e[1]);
      }
  }
  if (queued > 0) await pipe.exec();
  return written;
}

interface Run {
  batch: number;
  processes: number;
  events: number;
  /** From SIGCONT (WAL already filled) to the last event visible in Postgres. */
  seconds: number;
  eventsPerS: number;
  /** Seconds the fill took (pipelined XADD, persisters frozen meanwhile). */
  fillS: number;
  batches: number;
  batchMeanMs: number;
  /** CPU over the timed window, % of one core. */
  cpu: { persisters: number; postgres: number; redis: number; bench: number; machine: number };
  /** 1-minute load average when the run ended: other work on the machine shows here. */
  load: number;
}

async function runOnce(batch: number, events: number, processes: number): Promise<Run> {
  const prefix = `bench${randomBytes(3).toString('hex')}`;
  const baseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const dbName = `sa_bench_${randomBytes(4).toString('hex')}`;
  const admin = await createOrm({ databaseUrl: baseUrl, poolMax: 1 });
  await knexOf(admin).raw(`create database ${dbName}`);
  const url = new URL(baseUrl);
  url.pathname = `/${dbName}`;
  const env: Record<string, string> = {
    NODE_ENV: 'test',
    LOG_LEVEL: 'warn',
    REDIS_PREFIX: prefix,
    PARTITIONS: String(PARTITIONS),
    DATABASE_URL: url.toString(),
    PERSISTER_BATCH_EVENTS_MAX: String(batch),
    PERSISTER_BLOCK_MS: '100',
    PERSISTER_LEASE_MS: String(LEASE_MS),
    SIGNATURE_SECRETS: 'bench-signature-secret-0123456789',
    API_TOKENS: 'bench-api-token-0123456789abcdef',
  };
  const config = loadConfig({ ...process.env, ...env });
  const orm = await createOrm({ databaseUrl: config.databaseUrl, poolMax: 2 });
  const db = knexOf(orm);
  const keys = new Keys(prefix, PARTITIONS);
  const client = createRedisClient(config, { name: 'bench-fill', commandTimeoutMs: 30_000 });
  const persisters: Proc[] = [];
  try {
    await runMigrations(orm, { contract: true });
    await connectRedis(client);
    // What the api's boot check does: mark every (empty) partition live, so the
    // persisters' periodic hydrate check finds nothing to rebuild mid-run.
    await hydrateMissing({ config, client, logger: createLogger('warn'), orm: async () => orm });
    const redisPid = Number(/process_id:(\d+)/.exec(await client.info('server'))?.[1]) || undefined;
    for (let i = 0; i < processes; i++) {
      persisters.push(
        startProc(`persister-${i}`, [...NODE_ARGS, CLI, 'persist'], {
          ...env,
          METRICS_PORT: String(METRICS_PORT_BASE + i),
        }),
      );
    }
    await waitForLeaseSplit(client, keys, processes, 60_000);
    // Persister capacity alone: freeze the processes (leases are long enough to
    // survive), fill the WAL, then let them drain it and time that.
    for (const p of persisters) process.kill(p.pid, 'SIGSTOP');
    const fillStarted = process.hrtime.bigint();
    let written: number;
    try {
      written = await fill(client, keys, events);
    } finally {
      for (const p of persisters) process.kill(p.pid, 'SIGCONT');
    }
    const fillS = Number(process.hrtime.bigint() - fillStarted) / 1e9;
    // CPU seconds so far: persisters, all Postgres backends, Redis, the whole machine (steal included).
    const cpuNow = () => ({
      persisters: persisters.reduce((a, p) => a + (cpuSeconds(p.pid) ?? 0), 0),
      postgres: cpuOfComm('postgres'),
      redis: redisPid === undefined ? 0 : (cpuSeconds(redisPid) ?? 0),
      machine: machineBusySeconds() ?? 0,
    });
    const cpuBefore = cpuNow();
    const benchBefore = process.cpuUsage();
    const started = process.hrtime.bigint();
    for (;;) {
      const exited = persisters.find((p) => p.child.exitCode !== null);
      if (exited !== undefined) throw new Error(`${exited.name} exited: ${exited.tail.join('\n')}`);
      // 64 rows, cheap to poll (a count(*) over processed_events every 20 ms would cost Postgres ~10 %).
      const res = (await db.raw('select coalesce(sum(events_total), 0)::int as n from stream_offsets')) as {
        rows: { n: number }[];
      };
      if ((res.rows[0]?.n ?? 0) >= written) break;
      await sleep(20);
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const stored = (await db.raw('select count(*)::int as n from applied_events')) as {
      rows: { n: number }[];
    };
    if (stored.rows[0]?.n !== written)
      throw new Error(`${stored.rows[0]?.n} events in Postgres, ${written} written`);
    const pct = (cpuS: number) => Math.round((cpuS / seconds) * 100);
    const benchCpu = process.cpuUsage(benchBefore);
    const cpuAfter = cpuNow();
    const cpu = {
      persisters: pct(cpuAfter.persisters - cpuBefore.persisters),
      postgres: pct(cpuAfter.postgres - cpuBefore.postgres),
      redis: pct(cpuAfter.redis - cpuBefore.redis),
      bench: pct((benchCpu.user + benchCpu.system) / 1e6),
      machine: pct(cpuAfter.machine - cpuBefore.machine),
    };
    let batches = 0;
    let batchSum = 0;
    for (let i = 0; i < processes; i++) {
      const h = await scrapeHistogram(METRICS_PORT_BASE + i, 'persister_batch_duration_seconds');
      batches += h?.count ?? 0;
      batchSum += h?.sum ?? 0;
    }
    return {
      batch,
      processes,
      events: written,
      seconds,
      eventsPerS: written / seconds,
      fillS,
      batches,
      batchMeanMs: batches === 0 ? Number.NaN : (batchSum / batches) * 1000,
      cpu,
      load: loadavg()[0] ?? Number.NaN,
    };
  } finally {
    await Promise.all(persisters.map((p) => stopProc(p)));
    if (process.env.BENCH_SHOW_LOGS) for (const p of persisters) console.log(p.name, p.tail.join('\n'));
    // Remove the namespace (never FLUSH a shared server) and the database.
    let cursor = '0';
    do {
      const [next, found] = (await client.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000)) as [
        string,
        string[],
      ];
      cursor = next;
      if (found.length > 0) await client.unlink(...found);
    } while (cursor !== '0');
    client.disconnect();
    await orm.close(true);
    await knexOf(admin).raw(`drop database if exists ${dbName} with (force)`);
    await admin.close(true);
  }
}

/** What the persister section reads of a committed `npm run bench` result. */
interface BenchResult {
  command?: string;
  service?: { maxThroughputPerS?: number };
  limits?: { bareUwsScriptSweep?: Array<{ throughputPerS?: number }> };
  persisterCapacity?: { eventsPerS?: number };
}

/** The committed full (not --quick) `npm run bench` results, oldest first (file names are start times). */
function fullBenchResults(): Array<{ file: string; r: BenchResult }> {
  if (!existsSync(RESULTS_DIR)) return [];
  const out: Array<{ file: string; r: BenchResult }> = [];
  for (const file of readdirSync(RESULTS_DIR)
    .filter((x) => /^bench-.*\.json$/.test(x))
    .sort()) {
    try {
      const r = JSON.parse(readFileSync(join(RESULTS_DIR, file), 'utf8')) as BenchResult;
      if (!r.command?.includes('--quick')) out.push({ file, r });
    } catch {
      // not a bench result
    }
  }
  return out;
}

/** The api's highest decision rate in the committed `npm run bench` results (the requirement's reference). */
function apiPeak(
  results: Array<{ file: string; r: BenchResult }>,
): { perS: number; file: string; limit3PerS: number } | undefined {
  let best: { perS: number; file: string; limit3PerS: number } | undefined;
  for (const { file, r } of results) {
    const perS = r.service?.maxThroughputPerS ?? 0;
    const limit3PerS = Math.max(0, ...(r.limits?.bareUwsScriptSweep ?? []).map((x) => x.throughputPerS ?? 0));
    if (best === undefined || perS > best.perS) best = { perS, file, limit3PerS };
  }
  return best;
}

/** The newest full result with its own persister capacity figure (same run as its api peak). */
function sameRun(
  results: Array<{ file: string; r: BenchResult }>,
): { file: string; eventsPerS: number; peakPerS: number } | undefined {
  for (const { file, r } of [...results].reverse()) {
    const eventsPerS = r.persisterCapacity?.eventsPerS;
    const peakPerS = r.service?.maxThroughputPerS;
    if (eventsPerS !== undefined && peakPerS !== undefined) return { file, eventsPerS, peakPerS };
  }
  return undefined;
}

const k = (x: number) => Math.round(x).toLocaleString('en-US');
const BEGIN = '<!-- bench:persister:begin -->';
const END = '<!-- bench:persister:end -->';

function writeSection(runs: Run[], events: number): void {
  const file = join(process.cwd(), 'BENCHMARKS.md');
  const results = fullBenchResults();
  const peak = apiPeak(results);
  const bestRun = runs.reduce((a, b) => (b.eventsPerS > a.eventsPerS ? b : a));
  const bestOne = runs
    .filter((r) => r.processes === 1)
    .reduce<Run | undefined>((a, b) => (a === undefined || b.eventsPerS > a.eventsPerS ? b : a), undefined);
  const verdict =
    peak === undefined
      ? 'No `npm run bench` result in `bench-results/` to compare with.'
      : `The api's highest peak in the committed \`npm run bench\` results is **${k(peak.perS)} decisions/s** ` +
        `([\`${peak.file}\`](bench-results/${peak.file}); one WAL event per decision), so 2x = ${k(2 * peak.perS)} events/s. ` +
        `Best here: ${k(bestRun.eventsPerS)} events/s (${bestRun.processes} process${bestRun.processes > 1 ? 'es' : ''}, batch ${bestRun.batch}) ` +
        `= **${(bestRun.eventsPerS / peak.perS).toFixed(2)}x** the api's peak` +
        (bestOne === undefined
          ? ''
          : `; one process: ${k(bestOne.eventsPerS)} events/s = ${(bestOne.eventsPerS / peak.perS).toFixed(2)}x`) +
        `. Against limit (3) of that run (bare uWS + script, ${k(peak.limit3PerS)}/s, a ceiling for the api): ` +
        `${(bestRun.eventsPerS / Math.max(1, peak.limit3PerS)).toFixed(2)}x. That peak and this table are ` +
        'from different hours (and hosts: the VM moves between sessions), so the ratio mixes machine speeds.';
  const same = sameRun(results);
  const sameRunVerdict =
    same === undefined
      ? ''
      : ` Like with like: \`npm run bench\` ends by draining its own WAL with 2 persisters, in the same run as its api peak ` +
        `("Persister capacity" under "Swipe decisions"); the newest full run ([\`${same.file}\`](bench-results/${same.file})): ` +
        `${k(same.eventsPerS)} events/s against a peak of ${k(same.peakPerS)} decisions/s = **${(same.eventsPerS / same.peakPerS).toFixed(2)}x**.`;
  const lines = [
    '## Persister',
    '',
    `Measured by \`npm run bench:persister -- ${process.argv.slice(2).join(' ')}\` on ${new Date().toISOString().slice(0, 10)}: ${cpus().length} cores ` +
      `(${cpus()[0]?.model ?? 'unknown CPU'}), local Redis and Postgres (default settings, synchronous commit on). ` +
      `N real \`persist\` processes (\`node dist/cli.js persist\`) start on a fresh namespace (${PARTITIONS} partitions) ` +
      'and a fresh database and split the partition leases; the bench freezes them (SIGSTOP), writes ' +
      `${k(events)} WAL events (per trip: 1 trip.upserted, 4 item.updated, ${DECISIONS_PER_TRIP} authorization.decided (3 in 4 approved, with ledger ` +
      'postings), 1 reversal.applied, 1 trip.closed) with pipelined XADD ("fill s"), lets them go (SIGCONT) and times ' +
      "until Postgres holds every event (`applied_events`): their capacity alone, as the api's peak is its capacity alone. Each persister: read (next batch prefetched " +
      'while the current one is written), two concurrent transactions per batch (partitions split; multi-row ' +
      '`INSERT ... SELECT FROM json_to_recordset ... ON CONFLICT DO NOTHING`), commit, XACK, XTRIM MINID. ' +
      'CPU columns: % of one core over the timed window (Postgres = all its backends; "bench" polls the row count). The machine is a shared VM: "machine" (hypervisor steal included) above the sum of the others is other tenants\' work.',
    '',
    '| processes | batch events max | events | seconds | events/s | fill s | batches | batch mean ms | CPU % persisters / postgres / redis / bench / machine | load avg (1 min) |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |',
    ...runs.map(
      (r) =>
        `| ${r.processes} | ${r.batch} | ${r.events} | ${r.seconds.toFixed(2)} | ${k(r.eventsPerS)} | ${r.fillS.toFixed(2)} | ${r.batches} | ` +
        `${r.batchMeanMs.toFixed(0)} | ${r.cpu.persisters} / ${r.cpu.postgres} / ${r.cpu.redis} / ${r.cpu.bench} / ${r.cpu.machine} | ${r.load.toFixed(1)} |`,
    ),
    '',
    `Requirement: keep up with at least twice the api's peak decision rate. ${verdict}${sameRunVerdict}`,
    '',
    'Where the time goes, what was tried (writers, processes, COPY, indexes, collation) and what would move it: ' +
      '[docs/persister.md](docs/persister.md#throughput).',
    '',
    '',
  ];
  // Only the generated block is replaced: notes written below it in the section stay.
  const section = [lines[0], lines[1], BEGIN, ...lines.slice(2, -2), END].join('\n');
  let text = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n\n';
  const start = text.indexOf('## Persister');
  const begin = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  if (begin >= 0 && end > begin) {
    text = text.slice(0, begin) + section.slice(section.indexOf(BEGIN)) + text.slice(end + END.length);
  } else if (start >= 0) {
    const next = text.indexOf('\n## ', start + 1);
    text = `${text.slice(0, start)}${section}\n\n${next >= 0 ? text.slice(next + 1) : ''}`;
  } else {
    text = `${text.trimEnd()}\n\n${section}\n`;
  }
  writeFileSync(file, text);
}

async function main(): Promise<void> {
  const events = Number(process.argv[2] ?? 100_000);
  const batches = (process.argv[3] ?? '2000,5000').split(',').map(Number);
  const processCounts = (process.argv[4] ?? '1,2').split(',').map(Number);
  const runs: Run[] = [];
  for (const n of processCounts) {
    for (const b of batches) {
      const r = await runOnce(b, events, n);
      console.log(
        `persister x${n} batch=${b}: ${r.events} events in ${r.seconds.toFixed(2)} s = ${Math.round(r.eventsPerS)} events/s ` +
          `(fill ${r.fillS.toFixed(2)} s, ${r.batches} batches, mean ${r.batchMeanMs.toFixed(0)} ms, cpu ${JSON.stringify(r.cpu)})`,
      );
      runs.push(r);
    }
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
