// `npm run bench`: the service against this machine's limits, in one run.
//   limits: (1) bare uWS answering a fixed body, (2) authorizeSwipe straight at
//   Redis, (3) bare uWS calling the same script; then the real service
//   (`node dist/cli.js serve`, production env) at saturation (closed loop) and
//   at 25/50/75 % of its maximum (open loop, coordinated omission accounted),
//   with tracing off and on, the persisters' capacity on the WAL those phases left, and the
//   shopping mix with the persister running.
// Writes bench-results/bench-<time>.json, bench-results/latency.svg and the
// "Swipe decisions" / "Tracing cost" sections of BENCHMARKS.md.
// Flags: --quick (short phases, for trying it out), --profile (api under --cpu-prof),
//        --no-docs (JSON only), --phase-s=N, --connections=N, --report=<json> (docs from an earlier run)
import { execFileSync, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { createOrm, knexOf } from '../src/db/orm.js';
import { waitForLeaseSplit } from '../src/persister/leases.js';
import { Keys } from '../src/redis/keys.js';
import { LatencyHistogram, type SerializedHistogram } from './histogram.js';
import type { LoadJob, LoadResult } from './loadgen.js';
import { OVERLOAD_RATES_DEFAULT, type OverloadPoint, overloadPoint, overloadTable } from './overload.js';
import {
  cpuOfComm,
  cpuSeconds,
  counterDelta,
  runQueueWaitSeconds,
  histogramDelta,
  machineBusySeconds,
  httpOk,
  memStats,
  type Proc,
  round1,
  type ServiceLatency,
  scrapeCounterBy,
  scrapeGauge,
  scrapeHistogram,
  sleep,
  startProc,
  stopProc,
  tcpOpen,
  waitFor,
  pinTo,
  setSchedPolicy,
} from './procs.js';
import { REDIS_COST_BEFORE_DEFAULT, redisCost, redisCostTable } from './redisCost.js';
import { REGIONS_SECTION, type RegionsRow, regionsRow, regionsSection } from './regions.js';
import { type BenchResults, type PhaseResult, replaceSection, writeDocs } from './report.js';
import {
  PROCESSOR_BENCH_ENV,
  PROCESSOR_FORMATS,
  processorSection,
  registerBenchCards,
} from './processorFormats.js';
import {
  BENCH_SERVICE_ENV,
  benchShoppers,
  ITEMS,
  MAX_SWIPES_PER_MINUTE,
  pickBody,
  SECRET,
  TOKEN,
  tripBody,
} from './workload.js';

const here = path.dirname(fileURLToPath(import.meta.url));
// Compiled to .bench-build/bench/ (bench/tsconfig.json); the service under test is the real build in dist/.
const ROOT = path.resolve(here, '..', '..');
const DIST = path.join(ROOT, 'dist');
const RESULTS_DIR = path.join(ROOT, 'bench-results');

const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(`--${name}`);
const num = (name: string, fallback: number) => {
  const a = argv.find((x) => x.startsWith(`--${name}=`));
  return a === undefined ? fallback : Number(a.split('=')[1]);
};
const QUICK = flag('quick');
/** Redis cost of a decision (bench/redisCost.ts): its private redis-server's port, calls, "before" commit. */
const REDIS_COST_PORT = num('redis-cost-port', 19210);
const REDIS_COST_DECISIONS = num('redis-cost-decisions', QUICK ? 10_000 : 50_000);
const REDIS_COST_BEFORE =
  argv.find((a) => a.startsWith('--redis-cost-before='))?.split('=')[1] ?? REDIS_COST_BEFORE_DEFAULT;
const PHASE_S = num('phase-s', QUICK ? 3 : 8);
const WARMUP_S = QUICK ? 1 : 2;
const CONNECTIONS = num('connections', 64);
const SWEEP = QUICK ? [CONNECTIONS] : [16, 32, CONNECTIONS];
/** Each (3)/service pair runs this many times: the best of each is the maximum (noise only ever lowers it). */
const SWEEP_REPEAT = QUICK ? 1 : 2;
const OPEN_CONNECTIONS = 128;
const SHOPPERS = QUICK ? 400 : 2000;
const MIX_SHOPPERS = QUICK ? 200 : 500;
const MIX_RATE_SHARE = 0.25;
const MIX_ITEM_SHARE = 0.3;
const DRAIN_WAIT_S = 30;
const REQUESTS_MAX = 2_000_000; // per phase, whatever the rate
/** Persister capacity phase: processes (they split the partitions), measured window, batch bound (the default). */
const CAPACITY_PROCESSES = 2;
const CAPACITY_WINDOWS = 3;
const CAPACITY_WINDOW_S = QUICK ? 3 : 5;
/** How often the capacity phase reads the committed count (one tiny query). */
const CAPACITY_POLL_MS = 50;
const CAPACITY_BATCH_EVENTS_MAX = 10_000;
const REDIS_URL = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const ADMIN_DB_URL = process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const PARTITIONS = 64;
/** Diagnostics: taskset CPU lists for the api (and bare servers) and for the load generator (and Redis with BENCH_PIN_REDIS=1). */
const API_CPUS = process.env['BENCH_API_CPUS'];
const OTHER_CPUS = process.env['BENCH_OTHER_CPUS'];
const REDIS_CPUS = process.env['BENCH_REDIS_CPUS'] ?? OTHER_CPUS;
/** Diagnostics: extra node flags for every api process (e.g. "--trace-gc"), and a file for what it prints. */
const API_NODE_ARGS = (process.env['BENCH_API_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '');
/** BENCH_PORT_BASE: where the bench's loopback ports start (default 18400; a shared machine may reserve another range). */
const PORT_BASE = Number(process.env['BENCH_PORT_BASE'] ?? 18400);
const PORTS = {
  api: PORT_BASE + 10,
  apiMetrics: PORT_BASE + 11,
  mixApi: PORT_BASE + 20,
  mixMetrics: PORT_BASE + 21,
  persisterMetrics: PORT_BASE + 22,
  capacityMetrics: PORT_BASE + 23, // .. + CAPACITY_PROCESSES - 1
  bare: PORT_BASE + 30,
  bareScript: PORT_BASE + 31,
  bareScriptMetrics: PORT_BASE + 32,
  otel: PORT_BASE + 40,
  regionX: PORT_BASE + 50,
  regionXMetrics: PORT_BASE + 51,
  regionY: PORT_BASE + 52,
  regionYMetrics: PORT_BASE + 53,
  regionProxy: PORT_BASE + 54,
} as const;

const runId = randomBytes(4).toString('hex');
const prefix = `bench${runId}`;
const mixPrefix = `${prefix}m`;
const dbName = `bench_${runId}`;
/** Fail-open journals of the bench's api processes; removed at the end. */
const JOURNAL_DIR = path.join(os.tmpdir(), `swipe-bench-${runId}`);
const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
const started: Proc[] = [];
let redisPid: number | undefined;

function log(msg: string): void {
  console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`);
}

function apiEnv(port: number, metricsPort: number, keyPrefix: string, extra: Record<string, string> = {}) {
  return {
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(port),
    METRICS_PORT: String(metricsPort),
    REDIS_URL,
    REDIS_PREFIX: keyPrefix,
    DATABASE_URL: dbUrl(),
    PARTITIONS: String(PARTITIONS),
    SIGNATURE_SECRETS: SECRET,
    API_TOKENS: TOKEN,
    LOG_LEVEL: 'warn',
    MAX_SWIPES_PER_MINUTE: String(MAX_SWIPES_PER_MINUTE),
    ...BENCH_SERVICE_ENV,
    FAILOPEN_JOURNAL_PATH: path.join(JOURNAL_DIR, `${port}-failopen.jsonl`),
    SHUTDOWN_GRACE_MS: '3000',
    OTEL_SDK_DISABLED: '',
    OTEL_EXPORTER_OTLP_ENDPOINT: '',
    OTEL_TRACES_EXPORTER: '',
    ...PROCESSOR_BENCH_ENV,
    ...extra,
  };
}

function dbUrl(): string {
  const u = new URL(ADMIN_DB_URL);
  u.pathname = `/${dbName}`;
  return u.toString();
}

function track(p: Proc): Proc {
  started.push(p);
  return p;
}

async function startApi(
  name: string,
  port: number,
  metricsPort: number,
  keyPrefix: string,
  extra: Record<string, string> = {},
  nodeArgs: string[] = [],
): Promise<Proc> {
  const p = track(
    startProc(
      name,
      [...API_NODE_ARGS, ...nodeArgs, path.join(DIST, 'cli.js'), 'serve'],
      apiEnv(port, metricsPort, keyPrefix, extra),
      API_CPUS,
      process.env['BENCH_API_LOG'],
    ),
  );
  await waitFor(`${name} /readyz`, httpOk(`http://127.0.0.1:${port}/readyz`), 20_000, p);
  return p;
}

async function stop(p: Proc | undefined): Promise<void> {
  if (p === undefined) return;
  await stopProc(p);
  const i = started.indexOf(p);
  if (i >= 0) started.splice(i, 1);
}

/** Trips over the trip API (bearer token), each with every item picked. */
async function seed(port: number, count: number, tag: string): Promise<void> {
  const base = `http://127.0.0.1:${port}`;
  const headers = { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' };
  const body = tripBody();
  const shoppers = benchShoppers(count, tag);
  let next = 0;
  const worker = async () => {
    while (next < shoppers.length) {
      const s = shoppers[next++]!;
      const trip = `${base}/v1/shoppers/${s.shopperId}/trips/${s.tripId}`;
      const put = await fetch(trip, { method: 'PUT', headers, body });
      if (put.status !== 201 && put.status !== 200)
        throw new Error(`seed PUT ${put.status}: ${await put.text()}`);
      await put.arrayBuffer().catch(() => {});
      for (const item of ITEMS) {
        const r = await fetch(`${trip}/items/${item.item_id}`, {
          method: 'POST',
          headers,
          body: pickBody(item),
        });
        if (r.status !== 200) throw new Error(`seed pick ${r.status}: ${await r.text()}`);
        await r.arrayBuffer().catch(() => {});
      }
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  await registerBenchCards(port, shoppers);
}

interface Watch {
  metricsPort?: number;
  api?: Proc;
  extraPids?: Record<string, number>;
}

let phaseCounter = 0;

/** Labelled counters read at both ends of a phase's window (one /metrics scrape each time). */
const WINDOW_COUNTERS = [
  ['swipe_decisions_total', 'mode'],
  ['redis_errors_total', 'kind'],
  ['nodejs_gc_duration_seconds_count', 'kind'],
  ['nodejs_gc_duration_seconds_sum', 'kind'],
] as const;

function scrapeCounters(metricsPort: number): Promise<Array<Record<string, number> | undefined>> {
  return Promise.all(WINDOW_COUNTERS.map(([name, label]) => scrapeCounterBy(metricsPort, name, label)));
}

/** Runs one load phase in a separate process; scrapes the service histogram and CPU over the measured window. */
async function load(
  name: string,
  job: Omit<
    LoadJob,
    'tag' | 'seed' | 'warmupS' | 'durationS' | 'requestsMax' | 'shopperTag' | 'shopperCount'
  > &
    Partial<LoadJob>,
  watch: Watch = {},
): Promise<PhaseResult> {
  phaseCounter++;
  const full: LoadJob = {
    warmupS: WARMUP_S,
    durationS: PHASE_S,
    requestsMax: REQUESTS_MAX,
    shopperTag: 'b',
    shopperCount: SHOPPERS,
    tag: `${runId}p${phaseCounter}x`,
    seed: phaseCounter * 7919,
    ...job,
  };
  if (watch.metricsPort !== undefined) await settle(watch.metricsPort);
  const redisKeys = await redis.dbsize().catch(() => undefined);
  log(
    `${name}: ${full.mode} loop, ${full.connections} conns${full.rate ? `, ${full.rate}/s` : ''}, ${full.durationS} s, ${redisKeys ?? '?'} keys in Redis`,
  );
  const pids: Record<string, number> = { ...(watch.extraPids ?? {}) };
  if (watch.api !== undefined) pids['api'] = watch.api.pid;
  if (redisPid !== undefined) pids['redis'] = redisPid;
  const child = fork(path.join(here, 'loadgen.js'), [JSON.stringify(full)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  pids['loadgen'] = child.pid!;
  pinTo(child.pid!, OTHER_CPUS);
  if (process.env['BENCH_LOADGEN_NICE'])
    os.setPriority(child.pid!, Number(process.env['BENCH_LOADGEN_NICE']));
  const sched = process.env['BENCH_LOADGEN_SCHED'];
  if (sched === 'idle' || sched === 'fifo') setSchedPolicy(child.pid!, sched);
  let before: Awaited<ReturnType<typeof scrapeHistogram>>;
  let cpuBefore: Record<string, number> = {};
  let tBefore = 0;
  let statsBefore: { calls: number; usec: number; xadds: number } | undefined;
  let redisUsPerScript: number | undefined;
  let walEventsPerS: number | undefined;
  let countersBefore: Array<Record<string, number> | undefined> = [];
  let decisionsByMode: Record<string, number> | undefined;
  let redisErrors: Record<string, number> | undefined;
  let eventLoopLagMaxMs: number | undefined;
  let gcCount: Record<string, number> | undefined;
  let gcSum: Record<string, number> | undefined;
  // "other": every other process on the machine (other engineers' tests): the noise indicator.
  // Run-queue wait of the service's own processes: how long they were ready but had no core.
  const snapshotWait = (): Record<string, number> =>
    Object.fromEntries(
      Object.entries(pids)
        .filter(([k]) => k === 'api' || k === 'redis' || k === 'loadgen')
        .map(([k, pid]) => [k, runQueueWaitSeconds(pid) ?? 0]),
    );
  let waitBefore: Record<string, number> = {};
  const snapshotCpu = (): Record<string, number> => {
    const own = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSeconds(pid) ?? 0]));
    const ownTotal = Object.values(own).reduce((a, b) => a + b, 0);
    return { ...own, other: (machineBusySeconds() ?? ownTotal) - ownTotal };
  };
  const result = await new Promise<{
    load: LoadResult;
    serviceLatency?: ServiceLatency;
    cpu: Record<string, number>;
    wait: Record<string, number>;
  }>((resolve, reject) => {
    const timer = setTimeout(
      () => {
        child.kill('SIGKILL');
        reject(new Error(`${name}: load generator did not finish`));
      },
      (full.warmupS + full.durationS + 30) * 1000,
    );
    child.on('message', async (m: { type: string; result?: LoadResult }) => {
      if (m.type === 'measuring') {
        cpuBefore = snapshotCpu();
        waitBefore = snapshotWait();
        tBefore = performance.now();
        statsBefore = await evalshaStats();
        if (watch.metricsPort !== undefined) {
          before = await scrapeHistogram(watch.metricsPort, 'swipe_decision_duration_seconds');
          countersBefore = await scrapeCounters(watch.metricsPort);
          await sleep(300); // the next scrape must be a fresh one: it resets the event-loop-lag window
        }
      } else if (m.type === 'result' && m.result !== undefined) {
        clearTimeout(timer);
        const elapsed = (performance.now() - tBefore) / 1000;
        const cpuAfter = snapshotCpu();
        const waitAfter = snapshotWait();
        const statsAfter = await evalshaStats();
        if (statsBefore !== undefined && statsAfter !== undefined && statsAfter.calls > statsBefore.calls) {
          const perCall = (statsAfter.usec - statsBefore.usec) / (statsAfter.calls - statsBefore.calls);
          redisUsPerScript = Math.round(perCall * 10) / 10;
          walEventsPerS = Math.round((statsAfter.xadds - statsBefore.xadds) / elapsed);
        }
        const cpu = percentOfWindow(cpuBefore, cpuAfter, elapsed);
        let serviceLatency: ServiceLatency | undefined;
        if (watch.metricsPort !== undefined && before !== undefined) {
          const after = await scrapeHistogram(watch.metricsPort, 'swipe_decision_duration_seconds');
          if (after !== undefined) serviceLatency = histogramDelta(before, after);
          const countersAfter = await scrapeCounters(watch.metricsPort);
          [decisionsByMode, redisErrors, gcCount, gcSum] = WINDOW_COUNTERS.map((_, i) =>
            counterDelta(countersBefore[i], countersAfter[i]),
          );
          const lag = await scrapeGauge(watch.metricsPort, 'nodejs_eventloop_lag_max_seconds');
          // prom-client samples with a 10 ms timer and reports the whole interval: subtract it.
          if (lag !== undefined && lag > 0)
            eventLoopLagMaxMs = Math.max(0, Math.round(lag * 10_000) / 10 - 10);
        }
        const wait = percentOfWindow(waitBefore, waitAfter, elapsed);
        resolve({ load: m.result, serviceLatency, cpu, wait });
      }
    });
    child.once('exit', (code) => {
      if (code !== 0) {
        clearTimeout(timer);
        reject(new Error(`${name}: load generator exited with ${code}`));
      }
    });
  });
  const r = result.load;
  const phase: PhaseResult = {
    name,
    mode: full.mode,
    connections: full.connections,
    targetRate: full.rate,
    throughputPerS: r.throughputPerS,
    completed: r.completed,
    errors: r.errors,
    unfinished: r.unfinished,
    client: r.kinds['swipe']?.latency ?? r.all.latency,
    clientServiceTime: r.kinds['swipe']?.serviceTime,
    clientItems: r.kinds['item']?.latency,
    sendLateness: r.sendLateness,
    spectrum: spectrumOf(r),
    outcomes: r.all.outcomes,
    service: result.serviceLatency,
    cpuPercent: result.cpu,
    runQueueWaitPercent: result.wait,
    loadgenCpuS: round1(r.loadgenCpuS),
    redisUsPerScript,
    walEventsPerS,
    decisionsByMode,
    redisErrors,
    eventLoopLagMaxMs,
    redisKeys,
  };
  if (decisionsByMode !== undefined && r.completed > 0) {
    // Decisions Redis made per second (the metrics window spans the loadgen's measured window closely).
    const byRedis = (decisionsByMode['normal'] ?? 0) + (decisionsByMode['replay'] ?? 0);
    const failOpen = decisionsByMode['fail_open'] ?? 0;
    phase.failOpenShare =
      byRedis + failOpen === 0 ? 0 : Math.round((failOpen / (byRedis + failOpen)) * 10_000) / 10_000;
    phase.decidedPerS = Math.round(r.throughputPerS * (1 - phase.failOpenShare));
  }
  if (gcCount !== undefined && gcSum !== undefined && r.completed > 0) {
    const count = (kind: string) => gcCount?.[kind] ?? 0;
    // Mean pause of one kind in ms (2 decimals); gcSum is in seconds.
    const meanMs = (kind: string) =>
      count(kind) === 0 ? 0 : Math.round(((gcSum?.[kind] ?? 0) / count(kind)) * 100_000) / 100;
    const pauseS = Object.values(gcSum).reduce((a, b) => a + b, 0);
    phase.apiGc = {
      scavenges: count('minor'),
      scavengesPer1kRequests: Math.round((count('minor') / r.completed) * 100_000) / 100,
      scavengeMeanMs: meanMs('minor'),
      markCompacts: count('major'),
      markCompactMeanMs: meanMs('major'),
      pauseMsPerS: Math.round(((pauseS * 1000) / full.durationS) * 10) / 10,
    };
  }
  if (watch.api !== undefined) phase.apiMemory = memStats(watch.api.pid);
  if (watch.metricsPort !== undefined) {
    const mib = async (name: string) => {
      const v = await scrapeGauge(watch.metricsPort!, name);
      return v === undefined ? undefined : round1(v / 2 ** 20);
    };
    phase.apiHeap = {
      heapUsedMiB: await mib('nodejs_heap_size_used_bytes'),
      heapTotalMiB: await mib('nodejs_heap_size_total_bytes'),
      externalMiB: await mib('nodejs_external_memory_bytes'),
    };
  }
  const fo = decisionsByMode?.['fail_open'];
  const svc = `${phase.service === undefined ? '' : `, service p99 ${phase.service.p99Ms} ms`}${fo ? `, FAIL-OPEN ${fo}` : ''}, redis ${redisUsPerScript ?? '-'} µs/script`;
  const apiUs = phase.cpuPercent['api'];
  const perDecision =
    apiUs === undefined || phase.throughputPerS === 0
      ? ''
      : `, api ${Math.round((apiUs * 10_000) / phase.throughputPerS)} µs/decision`;
  const gc =
    phase.apiGc === undefined
      ? ''
      : `, gc ${phase.apiGc.scavengesPer1kRequests} scavenges/1k req (${phase.apiGc.scavengeMeanMs} ms each), ${phase.apiGc.markCompacts} mark-compacts (${phase.apiGc.markCompactMeanMs} ms each), pauses ${phase.apiGc.pauseMsPerS} ms/s`;
  const late =
    phase.sendLateness === undefined
      ? ''
      : `, sent late p90 ${phase.sendLateness.p90Ms} p99 ${phase.sendLateness.p99Ms} max ${phase.sendLateness.maxMs} ms`;
  log(
    `  -> ${phase.throughputPerS}/s${perDecision}${gc}${late}, client p50 ${phase.client.p50Ms} p99 ${phase.client.p99Ms} p99.9 ${phase.client.p999Ms} ms${svc}, cpu ${JSON.stringify(phase.cpuPercent)}, waiting for a core ${JSON.stringify(phase.runQueueWaitPercent)}`,
  );
  return phase;
}

/** Seconds counted per process over a window, as % of that window (of one core, for CPU). */
function percentOfWindow(
  before: Record<string, number>,
  after: Record<string, number>,
  elapsedS: number,
): Record<string, number> {
  return Object.fromEntries(
    Object.keys(after).map((k) => [k, round1((100 * (after[k]! - (before[k] ?? 0))) / elapsedS)]),
  );
}

/** Before a service phase: the circuit breaker closed again (an earlier overload may have opened it). */
async function settle(metricsPort: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  await sleep(500);
  while (Date.now() < deadline) {
    const state = await scrapeGauge(metricsPort, 'redis_circuit_state');
    if (state === undefined || state === 0) return;
    await sleep(200);
  }
  log('  (circuit breaker still not closed after 15 s)');
}

/**
 * Server-side time spent in EVALSHA, and XADD calls (the scripts' WAL appends are counted
 * too): all clients, others' tests too, but they are few.
 */
async function evalshaStats(): Promise<{ calls: number; usec: number; xadds: number } | undefined> {
  const text = await redis.info('commandstats').catch(() => '');
  const m = /cmdstat_evalsha:calls=(\d+),usec=(\d+)/.exec(text);
  const x = /cmdstat_xadd:calls=(\d+)/.exec(text);
  return m === null ? undefined : { calls: Number(m[1]), usec: Number(m[2]), xadds: Number(x?.[1] ?? 0) };
}

function spectrumOf(r: LoadResult): Array<[number, number]> {
  const s = r.kinds['swipe'] ?? r.all;
  // Rebuilt from the serialized histogram to keep the JSON small (no buckets).
  return histogramSpectrum(s.histogram);
}

function histogramSpectrum(h: SerializedHistogram): Array<[number, number]> {
  return LatencyHistogram.fromJSON(h).spectrum();
}

/** A local OTLP/HTTP sink: accepts POST /v1/traces, answers 200, counts what it got. */
function startOtelSink(): Promise<{ server: http.Server; stats: { requests: number; bytes: number } }> {
  const stats = { requests: 0, bytes: 0 };
  const server = http.createServer((req, res) => {
    req.on('data', (d: Buffer) => {
      stats.bytes += d.length;
    });
    req.on('end', () => {
      if (req.url === '/v1/traces') stats.requests++;
      res.writeHead(200, { 'Content-Type': 'application/x-protobuf' }).end();
    });
  });
  return new Promise((resolve) => server.listen(PORTS.otel, '127.0.0.1', () => resolve({ server, stats })));
}

/** Entries of the mix prefix's WAL streams not yet committed by the persister (group lag + pending). */
async function walBacklog(keyPrefix: string): Promise<number> {
  const pipe = redis.pipeline();
  for (let p = 0; p < PARTITIONS; p++) {
    pipe.call('XINFO', 'GROUPS', `${keyPrefix}:{p${p}}:wal`);
    pipe.xlen(`${keyPrefix}:{p${p}}:wal`);
  }
  const res = (await pipe.exec()) ?? [];
  let total = 0;
  for (let p = 0; p < PARTITIONS; p++) {
    const [err, groups] = res[2 * p] ?? [];
    const xlen = Number(res[2 * p + 1]?.[1] ?? 0);
    const g = err ? undefined : (groups as unknown[][]).find((x) => x[1] === 'persister');
    if (g === undefined) {
      total += xlen;
      continue;
    }
    const field = (n: string) => g[g.indexOf(n) + 1];
    const lag = field('lag');
    total += (lag === null ? xlen : Number(lag)) + Number(field('pending') ?? 0);
  }
  return total;
}

/** SCAN + UNLINK of the keys matching a pattern, except those `keep` spares; returns how many went. */
async function unlinkMatching(
  pattern: string,
  keep: (key: string) => boolean = () => false,
): Promise<number> {
  let cursor = '0';
  let removed = 0;
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 5000);
    cursor = next;
    const doomed = found.filter((k) => !keep(k));
    if (doomed.length > 0) removed += await redis.unlink(...doomed);
  } while (cursor !== '0');
  return removed;
}

/** Every key of this run (both prefixes). */
function cleanupRedis(): Promise<number> {
  return unlinkMatching(`${prefix}*`);
}

/**
 * Deletes the decision state the saturation sweep left (idempotency, signature and
 * authorization keys, trips, shoppers: millions of keys), keeping the WAL streams (the
 * persister-capacity phase drains them) and each partition's meta key (the api's
 * "state intact" marker). Returns the number of keys removed.
 */
function trimKeyspace(): Promise<number> {
  return unlinkMatching(`${prefix}:*`, (k) => k.endsWith(':wal') || k.endsWith(':meta'));
}

function psql(sql: string): boolean {
  try {
    execFileSync('psql', [ADMIN_DB_URL, '-v', 'ON_ERROR_STOP=1', '-q', '-c', sql], {
      stdio: 'pipe',
      timeout: 30_000,
    });
    return true;
  } catch (err) {
    log(`psql failed: ${(err as Error).message.split('\n')[0]}`);
    return false;
  }
}

/** Connects the bench's own Redis client; notes (and with BENCH_PIN_REDIS=1 pins) redis-server. Returns INFO server. */
async function connectBenchRedis(): Promise<string> {
  await redis.connect();
  const info = await redis.info('server');
  redisPid = Number(/process_id:(\d+)/.exec(info)?.[1]) || undefined;
  if (process.env['BENCH_PIN_REDIS'] === '1' && redisPid !== undefined) pinTo(redisPid, REDIS_CPUS);
  return info;
}

/** Stops what the run started, removes its Redis keys, database and journals, disconnects. */
async function cleanUp(dbCreated: boolean): Promise<void> {
  for (const p of [...started].reverse()) await stopProc(p).catch(() => {});
  log('cleaning up Redis keys and the bench database');
  const removed = await cleanupRedis().catch((err: unknown) => {
    log(`cleanup failed: ${(err as Error).message}`);
    return -1;
  });
  log(`removed ${removed} keys`);
  if (dbCreated) psql(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  rmSync(JOURNAL_DIR, { recursive: true, force: true });
  redis.disconnect();
}

/** Two regions, local vs forwarded decisions; logged as a table. */
async function runRegionsRow(): Promise<RegionsRow> {
  const row = await regionsRow({
    startApi: (name, port, metricsPort, keyPrefix, extra) => startApi(name, port, metricsPort, keyPrefix, extra),
    stop,
    seed,
    log,
    prefix,
    ports: {
      x: PORTS.regionX,
      xMetrics: PORTS.regionXMetrics,
      y: PORTS.regionY,
      yMetrics: PORTS.regionYMetrics,
      proxy: PORTS.regionProxy,
    },
  });
  log(`forwarded decisions:\n${regionsSection(row)}`);
  return row;
}

/** `--regions-only`: just the regions row, written to its BENCHMARKS.md section unless --no-docs. */
async function regionsOnly(): Promise<void> {
  await connectBenchRedis();
  const dbCreated = psql(`CREATE DATABASE ${dbName}`);
  try {
    const row = await runRegionsRow();
    if (flag('no-docs')) return;
    const file = path.join(ROOT, 'BENCHMARKS.md');
    const note = `\n\nRun \`npm run bench -- --regions-only\` (\`${runId}\`), ${new Date().toISOString().slice(0, 16)}Z, loadavg ${os.loadavg().map(round1).join(' ')}.`;
    writeFileSync(file, replaceSection(readFileSync(file, 'utf8'), REGIONS_SECTION, regionsSection(row) + note));
    log('BENCHMARKS.md "Forwarded decisions" updated');
  } finally {
    await cleanUp(dbCreated);
  }
}

async function main(): Promise<void> {
  if (flag('regions-only')) return regionsOnly();
  const t0 = Date.now();
  mkdirSync(RESULTS_DIR, { recursive: true });
  const info = await connectBenchRedis();
  const redisVersion = /redis_version:(\S+)/.exec(info)?.[1] ?? '?';
  const loadavgStart = os.loadavg().map(round1);
  log(`run ${runId}, prefix ${prefix}, ${os.cpus().length} cpus, loadavg ${loadavgStart.join(' ')}`);
  const dbCreated = psql(`CREATE DATABASE ${dbName}`);

  const results: BenchResults = {
    command: `npm run bench${argv.length > 0 ? ` -- ${argv.join(' ')}` : ''}`,
    runId,
    startedAt: new Date(t0).toISOString(),
    finishedAt: '',
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? '?',
      memGiB: round1(os.totalmem() / 2 ** 30),
      node: process.version,
      redis: redisVersion,
      loadavgStart,
      loadavgEnd: [],
    },
    settings: {
      phaseS: PHASE_S,
      warmupS: WARMUP_S,
      connections: CONNECTIONS,
      sweep: SWEEP,
      sweepRepeat: SWEEP_REPEAT,
      openLoopConnections: OPEN_CONNECTIONS,
      shoppers: SHOPPERS,
      partitions: PARTITIONS,
      mix: { shoppers: MIX_SHOPPERS, itemShare: MIX_ITEM_SHARE, rateShareOfMax: MIX_RATE_SHARE },
    },
    limits: {},
    service: { saturation: [], openLoop: [] },
    tracing: {},
    targets: [],
  };
  const http0 = { target: 'http' as const, host: '127.0.0.1', itemShare: 0 };

  try {
    // (0) the Redis cost of a decision, before and after, on a private redis-server (nothing else on it).
    log(`Redis cost of a decision: before ${REDIS_COST_BEFORE}, after, minimal script (${REDIS_COST_DECISIONS} calls each)`);
    results.redisCost = await redisCost({
      port: REDIS_COST_PORT,
      decisions: REDIS_COST_DECISIONS,
      before: REDIS_COST_BEFORE,
    });
    for (const line of redisCostTable(results.redisCost)) log(line);

    // (1) bare uWS, fixed body.
    const bare = track(
      startProc('bare-uws', [path.join(here, 'bare-uws.js')], { BENCH_PORT: String(PORTS.bare) }, API_CPUS),
    );
    await waitFor('bare-uws', tcpOpen(PORTS.bare), 10_000, bare);
    results.limits.bareUws = await load(
      'limit 1: bare uWS',
      { ...http0, port: PORTS.bare, connections: CONNECTIONS, mode: 'closed' },
      { api: bare },
    );
    await stop(bare);

    // The service, seeded.
    let api = await startApi('api', PORTS.api, PORTS.apiMetrics, prefix, {}, profileArgs('api-saturation'));
    log(`seeding ${SHOPPERS} trips`);
    await seed(PORTS.api, SHOPPERS, 'b');

    // (2) the script straight at Redis, same concurrency.
    results.limits.redisScript = await load('limit 2: script at Redis', {
      target: 'redis',
      host: '127.0.0.1',
      port: 0,
      redisUrl: REDIS_URL,
      prefix,
      partitions: PARTITIONS,
      connections: CONNECTIONS,
      mode: 'closed',
      itemShare: 0,
    });

    // (3) bare uWS + the script, and the service at saturation: one concurrency at a
    // time, back to back, so both see the same background noise on a shared machine.
    const bareScript = await startBareScript({});
    const bareScriptRuns: PhaseResult[] = [];
    for (const c of SWEEP.flatMap((x) => Array.from({ length: SWEEP_REPEAT }, () => x))) {
      bareScriptRuns.push(
        await load(
          `limit 3: bare uWS + script (${c})`,
          { ...http0, port: PORTS.bareScript, connections: c, mode: 'closed' },
          { api: bareScript, metricsPort: PORTS.bareScriptMetrics },
        ),
      );
      results.service.saturation.push(
        await load(
          `service saturation (${c})`,
          { ...http0, port: PORTS.api, connections: c, mode: 'closed' },
          { metricsPort: PORTS.apiMetrics, api },
        ),
      );
    }
    // CONTRACT §7: the same mix in each processor's format, right after the native sweep.
    results.processorFormats = [];
    for (const format of PROCESSOR_FORMATS) {
      results.processorFormats.push({
        format,
        phase: await load(
          `service saturation, ${format} format (${CONNECTIONS})`,
          { ...http0, port: PORTS.api, connections: CONNECTIONS, mode: 'closed', format },
          { metricsPort: PORTS.apiMetrics, api },
        ),
      });
    }
    // CONTRACT §8: forwarded decisions' p99 next to local ones (bench/regions.ts).
    results.regions = await runRegionsRow();
    results.limits.bareUwsScriptSweep = bareScriptRuns;
    results.limits.bareUwsScript = best(bareScriptRuns);
    await stop(bareScript);
    // (3b) ioredis auto-pipelining on (the service runs with it off); (3c) the write
    // coalescing proposed in BENCHMARKS.md.
    const bareAuto = await startBareScript({ BENCH_AUTOPIPELINE: '1' });
    results.limits.bareUwsScriptAutoPipelining = await load(
      `limit 3b: bare uWS + script, auto-pipelining (${CONNECTIONS})`,
      { ...http0, port: PORTS.bareScript, connections: CONNECTIONS, mode: 'closed' },
      { api: bareAuto, metricsPort: PORTS.bareScriptMetrics },
    );
    await stop(bareAuto);
    const bareCoalesce = await startBareScript({ BENCH_COALESCE: '1' });
    results.limits.bareUwsScriptCoalesced = await load(
      `limit 3c: bare uWS + script, writes coalesced (${CONNECTIONS})`,
      { ...http0, port: PORTS.bareScript, connections: CONNECTIONS, mode: 'closed' },
      { api: bareCoalesce, metricsPort: PORTS.bareScriptMetrics },
    );
    await stop(bareCoalesce);

    // Decisions made without Redis (fail-open after a deadline miss) are not capacity: the
    // maximum is the best rate of decisions Redis made (normal + replayed).
    const bestService = bestDecided(results.service.saturation);
    const max = bestService.decidedPerS ?? bestService.throughputPerS;
    results.service.maxThroughputPerS = max;
    results.service.maxFrom = bestService.name;
    if (flag('profile')) {
      await stop(api);
      api = await startApi('api', PORTS.api, PORTS.apiMetrics, prefix);
    }
    // The open-loop rows run at shares of the maximum, so they start from the state the maximum
    // was measured in: the sweep's ~3 keys per decision (millions) make every later script slower
    // (Redis' tables outgrow its caches and rehash), which would turn "50 %" into much more.
    const trimStarted = Date.now();
    const trimmed = await trimKeyspace();
    log(
      `removed ${trimmed} keys the sweep left (WAL streams kept) in ${Date.now() - trimStarted} ms; re-seeding`,
    );
    await seed(PORTS.api, SHOPPERS, 'b');
    for (const share of [0.25, 0.5, 0.75]) {
      const rate = Math.round(max * share);
      if (share === 0.5) {
        // The latency target's row, run first on limit (3): what the machine itself gives at
        // this rate, measured server-side the same way (same histogram, same start).
        const bare = await startBareScript({});
        results.limits.bareUwsScriptHalf = await load(
          'limit 3: bare uWS + script, open loop 50%',
          { ...http0, port: PORTS.bareScript, connections: OPEN_CONNECTIONS, mode: 'open', rate },
          { api: bare, metricsPort: PORTS.bareScriptMetrics },
        );
        results.limits.bareUwsScriptHalf.shareOfMax = share;
        await stop(bare);
      }
      const r = await load(
        `service open loop ${share * 100}%`,
        { ...http0, port: PORTS.api, connections: OPEN_CONNECTIONS, mode: 'open', rate },
        { metricsPort: PORTS.apiMetrics, api },
      );
      r.shareOfMax = share;
      results.service.openLoop.push(r);
    }
    // VmHWM of every api process that served the untraced phases (--profile restarts it once).
    results.service.peakRssMiB = Math.max(
      memStats(api.pid)?.peakRssMiB ?? 0,
      ...[...results.service.saturation, ...results.service.openLoop].map(
        (p) => p.apiMemory?.peakRssMiB ?? 0,
      ),
    );
    results.service.peakRssSaturationMiB = Math.max(
      ...results.service.saturation.map((p) => p.apiMemory?.peakRssMiB ?? 0),
    );
    results.service.rssNote = flag('profile')
      ? 'measured under --cpu-prof (the profiler keeps samples in memory)'
      : undefined;
    await stop(api);

    // Tracing on: same phases, spans exported to a local OTLP sink.
    const sink = await startOtelSink();
    const traced = await startApi(
      'api-traced',
      PORTS.api,
      PORTS.apiMetrics,
      prefix,
      {
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${PORTS.otel}`,
        OTEL_SERVICE_NAME: 'swipe-authorizer-bench',
      },
      profileArgs('api-traced'),
    );
    const tracedSat = await load(
      `tracing on: saturation (${CONNECTIONS})`,
      { ...http0, port: PORTS.api, connections: CONNECTIONS, mode: 'closed' },
      { metricsPort: PORTS.apiMetrics, api: traced },
    );
    const tracedHalf = await load(
      'tracing on: open loop 50%',
      { ...http0, port: PORTS.api, connections: OPEN_CONNECTIONS, mode: 'open', rate: Math.round(max * 0.5) },
      { metricsPort: PORTS.apiMetrics, api: traced },
    );
    tracedHalf.shareOfMax = 0.5;
    const tracedPeak = memStats(traced.pid)?.peakRssMiB;
    await stop(traced);
    await sleep(200);
    results.tracing = {
      off: {
        saturation: results.service.saturation.find((r) => r.connections === CONNECTIONS)!,
        half: results.service.openLoop.find((r) => r.shareOfMax === 0.5)!,
        peakRssMiB: results.service.peakRssMiB,
      },
      on: { saturation: tracedSat, half: tracedHalf, peakRssMiB: tracedPeak },
      exportRequests: sink.stats.requests,
      exportBytes: sink.stats.bytes,
    };
    sink.server.close();

    // The persisters' capacity on the WAL the phases above wrote (no persister ran meanwhile).
    results.persisterCapacity = await persisterCapacity();

    // Shopping mix (item updates + swipes) with the persister draining the WAL into Postgres.
    results.shoppingMix = await shoppingMix(max, dbCreated);
  } finally {
    await cleanUp(dbCreated);
  }

  results.machine.loadavgEnd = os.loadavg().map(round1);
  results.finishedAt = new Date().toISOString();
  results.durationS = Math.round((Date.now() - t0) / 1000);
  results.targets = evaluateTargets(results);
  const stamp = results.startedAt.replace(/[:.]/g, '-').slice(0, 19);
  const file = path.join(RESULTS_DIR, `bench-${stamp}.json`);
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  log(`results: ${path.relative(ROOT, file)}`);
  if (!flag('no-docs')) {
    writeDocs(results, path.relative(ROOT, file), ROOT);
    log('BENCHMARKS.md and bench-results/latency.svg updated');
  }
  for (const t of results.targets)
    log(`target ${t.met ? 'MET   ' : 'MISSED'} ${t.name}: ${t.value} (limit ${t.limit})`);
}

function profileArgs(name: string): string[] {
  if (!flag('profile')) return [];
  const dir = path.join(RESULTS_DIR, 'profiles');
  mkdirSync(dir, { recursive: true });
  return ['--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${name}-${runId}.cpuprofile`];
}

async function startBareScript(env: Record<string, string>): Promise<Proc> {
  const p = track(
    startProc(
      'bare-uws-script',
      [
        ...profileArgs(`bare-script${env['BENCH_AUTOPIPELINE'] ?? ''}${env['BENCH_COALESCE'] ?? ''}`),
        path.join(here, 'bare-uws-script.js'),
      ],
      {
        BENCH_PORT: String(PORTS.bareScript),
        BENCH_METRICS_PORT: String(PORTS.bareScriptMetrics),
        REDIS_URL,
        REDIS_PREFIX: prefix,
        PARTITIONS: String(PARTITIONS),
        ...env,
      },
      API_CPUS,
    ),
  );
  await waitFor('bare-uws-script', tcpOpen(PORTS.bareScript), 10_000, p);
  return p;
}

function bestDecided(runs: PhaseResult[]): PhaseResult {
  return runs.reduce((a, b) =>
    (b.decidedPerS ?? b.throughputPerS) > (a.decidedPerS ?? a.throughputPerS) ? b : a,
  );
}

function best(runs: PhaseResult[]): PhaseResult {
  return runs.reduce((a, b) => (b.throughputPerS > a.throughputPerS ? b : a));
}

/**
 * Persister capacity, in the same run as the api's peak: CAPACITY_PROCESSES real `persist`
 * processes drain the WAL that the limit (2)/(3) and service phases left under the bench
 * prefix (the api's own events: decisions at its peak mix, the seeded trips) into a database
 * of their own. Events committed per second (`stream_offsets`) in consecutive windows once
 * the leases are split, as the api's peak is its capacity alone.
 */
async function persisterCapacity(): Promise<NonNullable<BenchResults['persisterCapacity']>> {
  const db = `${dbName}_wal`;
  const url = new URL(ADMIN_DB_URL);
  url.pathname = `/${db}`;
  const base = { processes: CAPACITY_PROCESSES, windowS: CAPACITY_WINDOW_S, windowCount: CAPACITY_WINDOWS };
  if (!psql(`CREATE DATABASE ${db}`)) return { ...base, error: 'could not create the database' };
  const procs: Proc[] = [];
  try {
    const backlogBefore = await walBacklog(prefix);
    log(
      `persister capacity: ${CAPACITY_PROCESSES} processes on the run's WAL (${backlogBefore} entries), ${CAPACITY_WINDOWS} x ${CAPACITY_WINDOW_S} s`,
    );
    for (let i = 0; i < CAPACITY_PROCESSES; i++) {
      const port = PORTS.capacityMetrics + i;
      const p = track(
        startProc(`persister-${i}`, [path.join(DIST, 'cli.js'), 'persist'], {
          ...apiEnv(0, port, prefix, {
            DATABASE_URL: url.toString(),
            PERSISTER_BATCH_EVENTS_MAX: String(CAPACITY_BATCH_EVENTS_MAX),
          }),
        }),
      );
      procs.push(p);
      await waitFor(`persister-${i} metrics`, httpOk(`http://127.0.0.1:${port}/metrics`), 30_000, p);
    }
    await waitForLeaseSplit(redis, new Keys(prefix, PARTITIONS), CAPACITY_PROCESSES, 60_000);
    const orm = await createOrm({ databaseUrl: url.toString(), poolMax: 1 });
    const committed = async (): Promise<number> => {
      const r = (await knexOf(orm).raw(
        'select coalesce(sum(events_total), 0)::bigint as n from stream_offsets',
      )) as {
        rows: Array<{ n: string }>;
      };
      return Number(r.rows[0]?.n ?? 0);
    };
    const cpu = () => ({
      persisters: procs.reduce((a, p) => a + (cpuSeconds(p.pid) ?? 0), 0),
      postgres: cpuOfComm('postgres'),
      redis: cpuOfComm('redis-server'),
      machine: machineBusySeconds() ?? 0,
    });
    // Consecutive windows; the capacity is the best of them, as the api's maximum is the best
    // of its saturation runs (noise only ever lowers a capacity). The median is reported too.
    // Events arrive in Postgres a batch (10,000) at a time, so a fixed clock window counts 5-8
    // batches with one batch of luck either way (±15 %). Instead the committed count is polled
    // every 50 ms and each window's rate is taken between its first and last commit seen:
    // whole batches over the time they took.
    const committedBeforeWindow = await committed();
    const windows: NonNullable<NonNullable<BenchResults['persisterCapacity']>['windows']> = [];
    try {
      let cpu0 = cpu();
      let previous = committedBeforeWindow;
      for (let i = 0; i < CAPACITY_WINDOWS; i++) {
        const t0 = performance.now();
        const end = t0 + CAPACITY_WINDOW_S * 1000;
        let first: { t: number; c: number } | undefined;
        let last: { t: number; c: number } | undefined;
        while (performance.now() < end) {
          await sleep(CAPACITY_POLL_MS);
          const c = await committed();
          if (c === previous) continue;
          const point = { t: performance.now(), c };
          first ??= point;
          last = point;
          previous = c;
        }
        const cpu1 = cpu();
        const elapsed = (performance.now() - t0) / 1000;
        const spanS = first !== undefined && last !== undefined ? (last.t - first.t) / 1000 : 0;
        const events = first !== undefined && last !== undefined ? last.c - first.c : 0;
        windows.push({
          events,
          seconds: round1(spanS),
          eventsPerS: spanS > 0 ? Math.round(events / spanS) : 0,
          cpuPercent: Object.fromEntries(
            Object.entries(cpu1).map(([k, v]) => [
              k,
              round1((100 * (v - cpu0[k as keyof typeof cpu0])) / elapsed),
            ]),
          ),
        });
        cpu0 = cpu1;
      }
    } finally {
      await orm.close();
    }
    const backlogAfter = await walBacklog(prefix);
    const bestWindow = windows.reduce((a, b) => (b.eventsPerS > a.eventsPerS ? b : a));
    const sorted = windows.map((w) => w.eventsPerS).sort((a, b) => a - b);
    const medianPerS = sorted[Math.floor(sorted.length / 2)]!;
    const eventsPerS = bestWindow.eventsPerS;
    const cpuPercent = bestWindow.cpuPercent;
    // What the persisters wrote in all (window and before): rows per table, for reading the figure.
    const rowsWritten = Object.fromEntries(
      execFileSync(
        'psql',
        [
          url.toString(),
          '-tAF',
          ' ',
          '-c',
          `select 'event:' || type, count(*) from processed_events group by type
           union all select 'authorizations:' || decision, count(*) from authorizations group by decision
           union all select 'ledger_transfers', count(*) from ledger_transfers
           union all select 'trips', count(*) from trips`,
        ],
        { encoding: 'utf8', timeout: 30_000 },
      )
        .trim()
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => {
          const [k, v] = l.split(' ');
          return [k!, Number(v)];
        }),
    );
    log(
      `  -> best ${eventsPerS} events/s, median ${medianPerS} (windows: ${windows.map((w) => w.eventsPerS).join(', ')}), backlog ${backlogAfter} after, cpu of the best ${JSON.stringify(cpuPercent)}`,
    );
    return {
      ...base,
      batchEventsMax: CAPACITY_BATCH_EVENTS_MAX,
      backlogBefore,
      backlogAfter,
      committedBeforeWindow,
      windows,
      eventsPerS,
      medianPerS,
      // The window must end with work left, or the figure is only a lower bound.
      ranDry: backlogAfter === 0,
      cpuPercent,
      rowsWritten,
    };
  } catch (err) {
    const error = (err as Error).message.slice(0, 2000);
    log(`persister capacity failed: ${error}`);
    return { ...base, error, logTail: procs.flatMap((p) => p.tail.slice(-10)) };
  } finally {
    for (const p of procs) await stop(p);
    psql(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
  }
}

async function shoppingMix(
  max: number,
  dbCreated: boolean,
): Promise<NonNullable<BenchResults['shoppingMix']>> {
  const api = await startApi('api-mix', PORTS.mixApi, PORTS.mixMetrics, mixPrefix);
  log(`seeding ${MIX_SHOPPERS} trips for the shopping mix`);
  await seed(PORTS.mixApi, MIX_SHOPPERS, 'm');
  let persister: Proc | undefined;
  let persisterError: string | undefined;
  if (dbCreated) {
    persister = track(
      startProc('persister', [path.join(DIST, 'cli.js'), 'persist'], {
        ...apiEnv(0, PORTS.persisterMetrics, mixPrefix),
      }),
    );
    try {
      await waitFor(
        'persister metrics',
        httpOk(`http://127.0.0.1:${PORTS.persisterMetrics}/metrics`),
        30_000,
        persister,
      );
    } catch (err) {
      persisterError = (err as Error).message.slice(0, 2000);
      log(`persister did not start: ${persisterError}`);
      await stop(persister);
      persister = undefined;
    }
  } else persisterError = 'could not create the bench database';
  const backlogBefore = await walBacklog(mixPrefix);
  const rate = Math.round(max * MIX_RATE_SHARE);
  const extraPids: Record<string, number> = persister === undefined ? {} : { persister: persister.pid };
  const phase = await load(
    `shopping mix ${MIX_RATE_SHARE * 100}% (${MIX_ITEM_SHARE * 100}% item updates)`,
    {
      target: 'http',
      host: '127.0.0.1',
      port: PORTS.mixApi,
      connections: OPEN_CONNECTIONS,
      mode: 'open',
      rate,
      itemShare: MIX_ITEM_SHARE,
      shopperTag: 'm',
      shopperCount: MIX_SHOPPERS,
    },
    { metricsPort: PORTS.mixMetrics, api, extraPids },
  );
  const backlogAtEnd = await walBacklog(mixPrefix);
  let drainS: number | undefined;
  if (persister !== undefined) {
    const t = Date.now();
    while (Date.now() - t < DRAIN_WAIT_S * 1000) {
      if ((await walBacklog(mixPrefix)) === 0) {
        drainS = round1((Date.now() - t) / 1000);
        break;
      }
      await sleep(250);
    }
  }
  const backlogAfterWait = await walBacklog(mixPrefix);
  const persisterPeakRssMiB = persister === undefined ? undefined : memStats(persister.pid)?.peakRssMiB;
  const persisterLogTail =
    persister === undefined || drainS !== undefined ? undefined : persister.tail.slice(-15);
  await stop(persister);
  await stop(api);
  log(
    `  WAL backlog: ${backlogBefore} before, ${backlogAtEnd} at end of load, drained in ${drainS ?? '-'} s`,
  );
  return {
    phase,
    persister: persister !== undefined || persisterError === undefined,
    persisterError,
    walBacklogBeforeLoad: backlogBefore,
    walBacklogAtEnd: backlogAtEnd,
    walBacklogAfterWait: backlogAfterWait,
    drainS,
    drainWaitS: DRAIN_WAIT_S,
    persisterPeakRssMiB,
    persisterLogTail,
  };
}

function evaluateTargets(r: BenchResults): BenchResults['targets'] {
  const out: BenchResults['targets'] = [];
  const limit3 = r.limits.bareUwsScript?.throughputPerS;
  const max = r.service.maxThroughputPerS;
  if (limit3 !== undefined && max !== undefined) {
    const ratio = max / limit3;
    out.push({
      name: 'swipe throughput at saturation / limit (3)',
      value: pct(ratio),
      limit: '>= 80 %',
      met: ratio >= 0.8,
    });
  }
  const half = r.service.openLoop.find((x) => x.shareOfMax === 0.5);
  if (half?.service !== undefined) {
    // Limit (3) at the same rate, server-side: what the machine gives without the service's work.
    const bare = r.limits.bareUwsScriptHalf?.service;
    out.push({
      name: 'p99 service-side decision latency at 50 % of max',
      value: `${half.service.p99Ms} ms (${pct(half.service.fractionUnder1Ms)} <= 1 ms)${bare === undefined ? '' : `; limit (3) at the same rate: ${bare.p99Ms} ms (${pct(bare.fractionUnder1Ms)} <= 1 ms)`}`,
      limit: '<= 1 ms',
      met: half.service.fractionUnder1Ms >= 0.99,
    });
  }
  const cap = r.persisterCapacity;
  if (max !== undefined && cap?.eventsPerS !== undefined) {
    const ratio = cap.eventsPerS / max;
    out.push({
      name: `persister throughput (${cap.processes} processes, the run's WAL) / api peak decisions/s`,
      value: `${ratio.toFixed(2)}x (${cap.eventsPerS}/s vs ${max}/s; median window ${((cap.medianPerS ?? 0) / max).toFixed(2)}x${cap.ranDry ? '; the WAL ran dry: a lower bound' : ''})`,
      limit: '>= 2x',
      met: ratio >= 2,
    });
  }
  if (r.service.peakRssMiB !== undefined) {
    out.push({
      name: 'peak RSS of the api under load',
      value: `${r.service.peakRssMiB} MiB`,
      limit: '<= 150 MiB',
      met: r.service.peakRssMiB <= 150,
    });
  }
  return out;
}

const pct = (x: number) => `${Math.round(x * 1000) / 10} %`;

/** `--report=<results.json>`: rewrite this bench's BENCHMARKS.md sections and the chart from an earlier run. */
function reportOnly(file: string): void {
  const results = JSON.parse(readFileSync(file, 'utf8')) as BenchResults;
  writeDocs(results, path.relative(ROOT, path.resolve(file)), ROOT);
  log(`BENCHMARKS.md and bench-results/latency.svg rewritten from ${file}`);
}

/** One phase's server-side latency (the decision histogram of the service or of limit (3)). */
function logServerSide(r: PhaseResult, who: string): void {
  const s = r.service;
  if (s === undefined) return;
  log(
    `     ${who} p50 ${s.p50Ms} p99 ${s.p99Ms} p99.9 ${s.p999Ms} ms, ${pct(s.fractionUnder1Ms)} <= 1 ms${r.eventLoopLagMaxMs === undefined ? '' : `, loop lag ${r.eventLoopLagMaxMs} ms`}`,
  );
}

/**
 * `--open-at=<rate>[,<rate>...]`: diagnostics for the latency target. Only the service, seeded,
 * under the open loop at each given rate (req/s), one phase per rate; prints, writes nothing.
 * `--closed-at=<connections>[,...]`: the same under the closed loop (saturation); with
 * `--formats`, each processor format's phase after the native one, and their table.
 */
async function serviceOnly(rates: number[], mode: 'open' | 'closed', curve?: OverloadPoint[]): Promise<void> {
  await connectBenchRedis();
  const dbCreated = psql(`CREATE DATABASE ${dbName}`);
  try {
    const api = await startApi('api', PORTS.api, PORTS.apiMetrics, prefix, {}, profileArgs('api-open'));
    log(`seeding ${SHOPPERS} trips`);
    await seed(PORTS.api, SHOPPERS, 'b');
    // --with-bare: limit (3) under the same load just before each service phase.
    const bare = flag('with-bare') ? await startBareScript({}) : undefined;
    for (const rate of rates) {
      // Closed loop: the number is the connection count.
      const shape =
        mode === 'open' ? { connections: OPEN_CONNECTIONS, mode, rate } : { connections: rate, mode };
      if (bare !== undefined)
        logServerSide(
          await load(
            `limit 3: bare uWS + script (${mode === 'open' ? `${rate}/s` : rate})`,
            { target: 'http', host: '127.0.0.1', itemShare: 0, port: PORTS.bareScript, ...shape },
            { api: bare, metricsPort: PORTS.bareScriptMetrics },
          ),
          'limit (3) server-side',
        );
      const phase = await load(
        mode === 'open' ? `service open loop ${rate}/s` : `service saturation (${rate})`,
        { target: 'http', host: '127.0.0.1', itemShare: 0, port: PORTS.api, ...shape },
        { metricsPort: PORTS.apiMetrics, api },
      );
      logServerSide(phase, 'service');
      curve?.push(overloadPoint(phase, PHASE_S));
      // --formats (closed loop): the same phase in each processor's format, and the table.
      if (flag('formats') && mode === 'closed') {
        const rows = [];
        for (const format of PROCESSOR_FORMATS)
          rows.push({
            format,
            phase: await load(
              `service saturation, ${format} format (${rate})`,
              { target: 'http', host: '127.0.0.1', itemShare: 0, port: PORTS.api, ...shape, format },
              { metricsPort: PORTS.apiMetrics, api },
            ),
          });
        log(`processor formats:\n${processorSection(phase, rows)}`);
      }
    }
    if (curve !== undefined) log(`overload curve (Redis healthy):\n${overloadTable(curve)}`);
  } finally {
    await cleanUp(dbCreated);
  }
}

const reportFile = argv.find((x) => x.startsWith('--report='))?.slice('--report='.length);
const openRates = argv.find((x) => x.startsWith('--open-at='))?.slice('--open-at='.length);
const closedConns = argv.find((x) => x.startsWith('--closed-at='))?.slice('--closed-at='.length);
// --overload-at=<rate>,...: the overload curve (bench/overload.ts); bare --overload-at= takes its defaults.
const overloadRates = argv.find((x) => x.startsWith('--overload-at='))?.slice('--overload-at='.length);
const entry =
  reportFile !== undefined
    ? Promise.resolve(reportOnly(reportFile)).then(() => redis.disconnect())
    : overloadRates !== undefined
      ? serviceOnly(
          overloadRates === '' ? OVERLOAD_RATES_DEFAULT : overloadRates.split(',').map(Number),
          'open',
          [],
        )
      : openRates !== undefined
        ? serviceOnly(openRates.split(',').map(Number), 'open')
        : closedConns !== undefined
          ? serviceOnly(closedConns.split(',').map(Number), 'closed')
          : main();
entry.catch(async (err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  for (const p of [...started].reverse()) await stopProc(p).catch(() => {});
  process.exit(1);
});
