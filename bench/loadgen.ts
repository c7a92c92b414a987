// Load generator, run as its own process (child_process.fork from run.ts).
// Raw `net` sockets and hand-built HTTP/1.1 requests, N keep-alive connections,
// one request in flight per connection (no pipelining).
//   closed loop: each connection sends its next request when the answer arrives.
//   open loop:   a fixed schedule (rate/s, released in 1 ms batches); latency is
//                measured from the *intended* send time, so a stalled server is
//                charged for every request it delayed (coordinated omission).
// Also the Redis-only driver: authorizeSwipe straight at Redis with the same
// client options as the service and the same number of calls in flight.
// Talks to its parent over IPC: {type:'measuring'} when warm-up ends,
// {type:'result', result} at the end.
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { signatureHeader } from '../src/auth/signature.js';
import { loadConfig } from '../src/config/config.js';
import { createRedisClient } from '../src/redis/client.js';
import { Keys } from '../src/redis/keys.js';
import { ScriptRunner } from '../src/redis/scripts.js';
import { LatencyHistogram, type LatencySummary, type SerializedHistogram } from './histogram.js';
import { type BenchFormat, processorRequestBytes } from './processorFormats.js';
import {
  authorizeCall,
  benchShoppers,
  ITEMS,
  pickBody,
  Rng,
  SECRET,
  type Swipe,
  SwipeMix,
  TOKEN,
} from './workload.js';

export interface LoadJob {
  readonly target: 'http' | 'redis';
  readonly host: string;
  readonly port: number;
  /** Redis-only driver. */
  readonly redisUrl?: string;
  readonly prefix?: string;
  readonly partitions?: number;
  readonly connections: number;
  readonly mode: 'closed' | 'open';
  /** Open loop: requests per second. */
  readonly rate?: number;
  readonly warmupS: number;
  readonly durationS: number;
  /** Hard bound on requests sent, whatever the duration. */
  readonly requestsMax: number;
  /** Share of requests that are item updates (shopping mix); 0 = swipes only. */
  readonly itemShare: number;
  readonly shopperCount: number;
  readonly shopperTag: string;
  /** Unique per phase: prefix of transaction ids. */
  readonly tag: string;
  /** Swipes in a processor's format (processorFormats.ts); default the native webhook. */
  readonly format?: BenchFormat;
  readonly seed: number;
}

export interface KindResult {
  /** CO-corrected in open loop (from intended send time); from actual send in closed loop. */
  latency: LatencySummary;
  /** From the actual send (open loop only: what the request itself took). */
  serviceTime?: LatencySummary;
  histogram: SerializedHistogram;
  outcomes: Record<string, number>;
}

export interface LoadResult {
  job: LoadJob;
  measuredS: number;
  completed: number;
  throughputPerS: number;
  errors: number;
  unfinished: number;
  /** Open loop: how late requests left the client (timer jitter, all connections busy). */
  sendLateness?: LatencySummary;
  kinds: Record<string, KindResult>;
  all: KindResult;
  loadgenCpuS: number;
}

const DRAIN_MS = 3000;
const CONNECT_TIMEOUT_MS = 3000;

class Recorder {
  readonly latency = new LatencyHistogram();
  readonly service = new LatencyHistogram();
  readonly outcomes: Record<string, number> = {};
  count(outcome: string): void {
    this.outcomes[outcome] = (this.outcomes[outcome] ?? 0) + 1;
  }
  result(openLoop: boolean): KindResult {
    const r: KindResult = {
      latency: this.latency.summary(),
      histogram: this.latency.toJSON(),
      outcomes: this.outcomes,
    };
    if (openLoop) r.serviceTime = this.service.summary();
    return r;
  }
}

interface Pending {
  readonly intendedMs: number;
}

/** One request to send, built lazily (signing costs a few µs). */
interface Built {
  readonly kind: 'swipe' | 'item';
  readonly bytes: string;
}

function requestBuilder(job: LoadJob): () => Built {
  const shoppers = benchShoppers(job.shopperCount, job.shopperTag);
  const rng = new Rng(job.seed);
  const mix = new SwipeMix(shoppers, rng, job.tag);
  const host = `${job.host}:${job.port}`;
  const milk = ITEMS[1];
  return () => {
    if (job.itemShare > 0 && rng.next() < job.itemShare) {
      const s = shoppers[rng.int(shoppers.length)]!;
      const body = pickBody(milk, 1 + rng.int(milk.quantity));
      return {
        kind: 'item',
        bytes:
          `POST /v1/shoppers/${s.shopperId}/trips/${s.tripId}/items/${milk.item_id} HTTP/1.1\r\nHost: ${host}\r\n` +
          `Authorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
      };
    }
    const swipe = mix.next();
    if (job.format !== undefined && job.format !== 'native')
      return { kind: 'swipe', bytes: processorRequestBytes(job.format, swipe, host) };
    const sig = signatureHeader(SECRET, Math.floor(Date.now() / 1000), swipe.json);
    return {
      kind: 'swipe',
      bytes:
        `POST /v1/authorizations HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\n` +
        `X-Signature: ${sig}\r\nContent-Length: ${swipe.json.length}\r\n\r\n${swipe.json}`,
    };
  };
}

class Connection {
  private socket: net.Socket;
  private buf: Buffer | null = null;
  busy = false;
  private sentMs = 0;
  private intendedMs = 0;
  private kind = '';

  constructor(
    private readonly job: LoadJob,
    private readonly onDone: (
      c: Connection,
      kind: string,
      outcome: string,
      sentMs: number,
      intendedMs: number,
    ) => void,
    private readonly onError: (c: Connection) => void,
  ) {
    this.socket = this.open();
  }

  private open(): net.Socket {
    const s = net.connect({ host: this.job.host, port: this.job.port, noDelay: true });
    s.on('data', (chunk: Buffer) => this.onData(chunk));
    s.on('error', () => {});
    s.on('close', () => {
      if (this.busy) {
        this.busy = false;
        this.buf = null;
        this.onError(this);
      }
    });
    return s;
  }

  ready(): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('connect timeout')), CONNECT_TIMEOUT_MS);
      this.socket.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      this.socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  reopenIfClosed(): void {
    if (this.socket.destroyed) this.socket = this.open();
  }

  send(req: Built, intendedMs: number): void {
    this.busy = true;
    this.kind = req.kind;
    this.intendedMs = intendedMs;
    this.sentMs = performance.now();
    this.socket.write(req.bytes, 'latin1');
  }

  private onData(chunk: Buffer): void {
    const buf = this.buf === null ? chunk : Buffer.concat([this.buf, chunk]);
    const headerEnd = buf.indexOf('\r\n\r\n');
    if (headerEnd < 0) {
      this.buf = buf;
      return;
    }
    const head = buf.toString('latin1', 0, headerEnd);
    const m = /content-length: *(\d+)/i.exec(head);
    const total = headerEnd + 4 + (m === null ? 0 : Number(m[1]));
    if (buf.length < total) {
      this.buf = buf;
      return;
    }
    this.buf = null;
    const status = head.slice(9, 12);
    const outcome = head.includes('Idempotent-Replayed') ? `${status} replayed` : status;
    this.busy = false;
    this.onDone(this, this.kind, outcome, this.sentMs, this.intendedMs);
  }

  close(): void {
    this.socket.destroy();
  }
}

async function runHttp(job: LoadJob): Promise<LoadResult> {
  const build = requestBuilder(job);
  const recorders: Record<string, Recorder> = { swipe: new Recorder(), item: new Recorder() };
  const lateness = new LatencyHistogram();
  const openLoop = job.mode === 'open';
  const cpu0 = process.cpuUsage();
  let sent = 0;
  let errors = 0;
  let sending = true;
  const queue: Pending[] = [];
  const idle: Connection[] = [];
  let t0 = 0;
  let measureFromMs = 0;
  let endMs = 0;
  let pump = (): void => {};

  const next = (c: Connection): void => {
    if (!sending || sent >= job.requestsMax) return;
    if (openLoop) {
      const p = queue.shift();
      if (p === undefined) {
        idle.push(c);
        return;
      }
      dispatch(c, p.intendedMs);
    } else {
      dispatch(c, performance.now());
    }
  };
  const dispatch = (c: Connection, intendedMs: number): void => {
    sent++;
    c.send(build(), intendedMs);
  };
  const onDone = (c: Connection, kind: string, outcome: string, sentMs: number, intendedMs: number) => {
    const now = performance.now();
    if (intendedMs >= measureFromMs && intendedMs < endMs) {
      const rec = recorders[kind]!;
      rec.latency.recordMs(now - intendedMs);
      if (openLoop) {
        rec.service.recordMs(now - sentMs);
        lateness.recordMs(sentMs - intendedMs);
      }
      rec.count(outcome);
    }
    next(c);
    pump();
  };
  const onError = (c: Connection) => {
    errors++;
    setTimeout(() => {
      c.reopenIfClosed();
      next(c);
    }, 10);
  };

  const conns: Connection[] = [];
  for (let i = 0; i < job.connections; i++) conns.push(new Connection(job, onDone, onError));
  await Promise.all(conns.map((c) => c.ready()));

  t0 = performance.now();
  measureFromMs = t0 + job.warmupS * 1000;
  endMs = measureFromMs + job.durationS * 1000;
  const warm = setTimeout(() => process.send?.({ type: 'measuring' }), job.warmupS * 1000);

  let ticker: NodeJS.Timeout | undefined;
  if (openLoop) {
    const rate = job.rate ?? 1000;
    let scheduled = 0;
    idle.push(...conns);
    // Request i is intended at t0 + i / rate. The schedule is checked on a 1 ms
    // timer and after every response (sub-ms precision while busy).
    pump = () => {
      const now = performance.now();
      if (!sending) return;
      if (now >= endMs || scheduled >= job.requestsMax) {
        sending = false;
        return;
      }
      while (scheduled < job.requestsMax) {
        const intendedMs = t0 + (scheduled * 1000) / rate;
        if (intendedMs > now) break;
        scheduled++;
        const c = idle.pop();
        if (c === undefined) queue.push({ intendedMs });
        else dispatch(c, intendedMs);
      }
    };
    const tick = () => {
      pump();
      if (sending) ticker = setTimeout(tick, 1);
    };
    tick();
  } else {
    for (const c of conns) next(c);
    ticker = setTimeout(() => {
      sending = false;
    }, endMs - performance.now());
  }

  await new Promise<void>((r) => setTimeout(r, Math.max(0, endMs - performance.now())));
  sending = false;
  const drainUntil = performance.now() + DRAIN_MS;
  while (conns.some((c) => c.busy) && performance.now() < drainUntil)
    await new Promise((r) => setTimeout(r, 5));
  clearTimeout(ticker);
  clearTimeout(warm);
  const unfinished = conns.filter((c) => c.busy).length + queue.length;
  for (const c of conns) c.close();

  const all = new Recorder();
  const kinds: Record<string, KindResult> = {};
  for (const [k, rec] of Object.entries(recorders)) {
    if (rec.latency.total === 0) continue;
    kinds[k] = rec.result(openLoop);
    all.latency.merge(rec.latency);
    all.service.merge(rec.service);
    for (const [o, n] of Object.entries(rec.outcomes)) all.outcomes[`${k} ${o}`] = n;
  }
  const completed = all.latency.total;
  const cpu = process.cpuUsage(cpu0);
  const result: LoadResult = {
    job,
    measuredS: job.durationS,
    completed,
    throughputPerS: Math.round(completed / job.durationS),
    errors,
    unfinished,
    kinds,
    all: all.result(openLoop),
    loadgenCpuS: (cpu.user + cpu.system) / 1e6,
  };
  if (openLoop) result.sendLateness = lateness.summary();
  return result;
}

async function runRedis(job: LoadJob): Promise<LoadResult> {
  const config = loadConfig({ REDIS_URL: job.redisUrl ?? 'redis://127.0.0.1:6379', LOG_LEVEL: 'silent' });
  const client = createRedisClient(config, { name: 'bench-redis-driver', commandTimeoutMs: 2000 });
  await client.connect();
  const scripts = new ScriptRunner(client, undefined, undefined);
  const keys = new Keys(job.prefix ?? 'sa', job.partitions ?? 64);
  const mix = new SwipeMix(benchShoppers(job.shopperCount, job.shopperTag), new Rng(job.seed), job.tag);
  const rec = new Recorder();
  const cpu0 = process.cpuUsage();
  let sent = 0;
  let errors = 0;
  let sending = true;
  const t0 = performance.now();
  const measureFromMs = t0 + job.warmupS * 1000;
  const endMs = measureFromMs + job.durationS * 1000;
  const warm = setTimeout(() => process.send?.({ type: 'measuring' }), job.warmupS * 1000);
  const stop = setTimeout(() => {
    sending = false;
  }, endMs - t0);

  const sigPrefix = Buffer.from(job.tag).toString('hex').slice(0, 40).padEnd(40, '0');
  const one = async (): Promise<void> => {
    while (sending && sent < job.requestsMax) {
      sent++;
      const swipe: Swipe = mix.next();
      const signature = sigPrefix + sent.toString(16).padStart(24, '0');
      const call = authorizeCall(keys, swipe, signature, Date.now(), randomUUID(), `auth_${randomUUID()}`);
      const started = performance.now();
      try {
        const raw = (await scripts.run('authorizeSwipe', call.keys, call.args)) as unknown[];
        const now = performance.now();
        if (started >= measureFromMs && started < endMs) {
          rec.latency.recordMs(now - started);
          const code = Number(raw[0]);
          rec.count(Number(raw[6]) === 1 ? `${code === 0 ? 200 : 402} replayed` : code === 0 ? '200' : '402');
        }
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: job.connections }, one));
  clearTimeout(warm);
  clearTimeout(stop);
  client.disconnect();
  const cpu = process.cpuUsage(cpu0);
  const kind = rec.result(false);
  return {
    job,
    measuredS: job.durationS,
    completed: rec.latency.total,
    throughputPerS: Math.round(rec.latency.total / job.durationS),
    errors,
    unfinished: 0,
    kinds: { swipe: kind },
    all: kind,
    loadgenCpuS: (cpu.user + cpu.system) / 1e6,
  };
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? '{}') as LoadJob;
  const result = job.target === 'redis' ? await runRedis(job) : await runHttp(job);
  if (process.send !== undefined) process.send({ type: 'result', result }, () => process.exit(0));
  else {
    console.log(JSON.stringify(result));
    process.exit(0);
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
