// Harness of the fault tests: a real api child process (this source, bundled
// on the fly), a bounded open-loop load generator on loopback, and the checks
// every fault must pass (answers, latency, caps, identical retries, replay
// exactly once in the WAL, no double counting).
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import type { Redis } from 'ioredis';
import { signatureHeader } from '../../src/auth/signature.js';
import { machineCpuSeconds } from '../../bench/procs.js';
import { Keys } from '../../src/redis/keys.js';
import { walPayload } from '../helpers/walPayload.js';

export const SECRET = 'fault-signature-secret-0123456789';
export const TOKEN = 'fault-api-token-0123456789abcdef';
/** The processor's deadline: an answer later than this counts as not answered. */
export const CLIENT_TIMEOUT_MS = 1000;

let bundlePath: string | undefined;

/** Bundles test/failopen/apiChild.ts (and the src it imports) into one ESM file next to node_modules. */
export async function bundleApiChild(): Promise<string> {
  if (bundlePath !== undefined) return bundlePath;
  const { build } = await import('rolldown');
  const dir = join(process.cwd(), 'node_modules', '.cache', 'sa-failopen-tests');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `apiChild-${process.pid}-${randomBytes(3).toString('hex')}.mjs`);
  await build({
    input: join(process.cwd(), 'test/failopen/apiChild.ts'),
    platform: 'node',
    external: (id: string) => !id.startsWith('.') && !id.startsWith('/'),
    output: { file, format: 'esm' },
    logLevel: 'silent',
  });
  bundlePath = file;
  return file;
}

export interface ApiProc {
  readonly base: string;
  readonly metricsBase: string;
  readonly pid: number;
  readonly logPath: string;
  kill9(): Promise<void>;
  /** SIGTERM: drain, flush the journal, exit. */
  stop(): Promise<void>;
  metric(name: string): Promise<number>;
}

export async function startApiProc(env: Record<string, string>, logPath: string): Promise<ApiProc> {
  const file = await bundleApiChild();
  const logFd = openSync(logPath, 'a');
  const proc: ChildProcess = spawn(process.execPath, [file], {
    env: {
      PATH: process.env['PATH'] ?? '',
      NODE_ENV: 'test',
      HOST: '127.0.0.1',
      PORT: '0',
      METRICS_PORT: '0',
      SIGNATURE_SECRETS: SECRET,
      API_TOKENS: TOKEN,
      PARTITIONS: '8',
      LOG_LEVEL: 'warn',
      MAX_SWIPES_PER_MINUTE: '100000',
      SHUTDOWN_GRACE_MS: '3000',
      ...env,
    },
    stdio: ['ignore', logFd, logFd, 'ipc'],
  });
  closeSync(logFd);
  const ports = await new Promise<{ port: number; metricsPort: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('api child did not start in 15 s')), 15_000);
    proc.once('message', (m) => {
      clearTimeout(timer);
      resolve(m as { port: number; metricsPort: number });
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`api child exited with ${code}: ${readFileSync(logPath, 'utf8').slice(-2000)}`));
    });
  });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const metricsBase = `http://127.0.0.1:${ports.metricsPort}`;
  return {
    base: `http://127.0.0.1:${ports.port}`,
    metricsBase,
    pid: proc.pid as number,
    logPath,
    async kill9() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
    async metric(name: string) {
      const text = await (await fetch(`${metricsBase}/metrics`)).text();
      let total = 0;
      for (const line of text.split('\n')) {
        if (line.startsWith(`${name} `) || line.startsWith(`${name}{`))
          total += Number(line.split(' ').pop());
      }
      return total;
    },
  };
}

// ---- trips ---------------------------------------------------------------

/**
 * Setup requests a busy machine's pod shed (503 overloaded: nothing was done, "retry") are
 * sent again, at most 50 times 100 ms apart; shedding itself is what saturation.test.ts checks.
 */
async function unlessShed(send: () => Promise<Response>): Promise<Response> {
  for (let attempt = 1; ; attempt++) {
    const res = await send();
    if (res.status !== 503 || attempt >= 50) return res;
    await res.text();
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A trip with one big picked item, so allowance and velocity never limit the load. */
export async function createShoppers(base: string, count: number, tag: string): Promise<string[]> {
  const shoppers: string[] = [];
  const auth = { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' };
  for (let i = 0; i < count; i++) {
    const shopper = `${tag}${i}_${randomBytes(3).toString('hex')}`;
    const path = `${base}/v1/shoppers/${shopper}/trips/trip_${shopper}`;
    const trip = {
      merchant: { name: 'Safeway', address: '123 Main St' },
      currency: 'USD',
      orders: [{ order_id: 'o-1', items: [{ item_id: 'tv', quantity: 1, unit_price: '5000.00' }] }],
    };
    const put = await unlessShed(() =>
      fetch(path, { method: 'PUT', headers: auth, body: JSON.stringify(trip) }),
    );
    if (put.status !== 201) throw new Error(`trip PUT ${put.status}: ${await put.text()}`);
    const pick = await unlessShed(() =>
      fetch(`${path}/items/tv`, {
        method: 'POST',
        headers: auth,
        body: JSON.stringify({ status: 'picked', quantity: 1, unit_price: '5000.00' }),
      }),
    );
    if (pick.status !== 200) throw new Error(`pick ${pick.status}: ${await pick.text()}`);
    shoppers.push(shopper);
  }
  return shoppers;
}

// ---- load ----------------------------------------------------------------

export interface Rec {
  readonly key: string;
  readonly shopper: string;
  readonly amountCents: number;
  readonly body: string;
  readonly sentAtMs: number;
  readonly retry: boolean;
  latencyMs: number;
  status: number;
  text: string;
  json: Record<string, unknown>;
  error: string;
}

export interface LoadOptions {
  readonly target: () => string | undefined;
  readonly shoppers: readonly string[];
  readonly durationMs: number;
  readonly rps: number;
  /** Fraction of requests that resend an earlier request (same body, same key). */
  readonly retryFraction: number;
  /** Called once per elapsed millisecond mark the caller asks for (fault schedule). */
  readonly schedule: ReadonlyArray<{ atMs: number; run: () => void | Promise<void> }>;
}

export interface LoadRun {
  readonly recs: Rec[];
  /**
   * Worst event-loop stall of this (the load generator's) process during the
   * run: latency measured here includes it, so a failure report says whether
   * the client or the service stalled.
   */
  readonly clientLagMaxMs: number;
  /** Share of the machine's CPU time the hypervisor gave to other guests during the run (/proc/stat steal), %. */
  readonly stealPct: number;
}

/** Open loop: one request every 1000/rps ms whatever the answers do; bounded by duration. */
export async function runLoad(o: LoadOptions): Promise<LoadRun> {
  const recs: Rec[] = [];
  const lag = monitorEventLoopDelay({ resolution: 5 });
  lag.enable();
  const cpu0 = machineCpuSeconds();
  const inflight = new Set<Promise<void>>();
  const start = performance.now();
  const intervalMs = 1000 / o.rps;
  const pendingSchedule = [...o.schedule].sort((a, b) => a.atMs - b.atMs);
  const scheduleDone: Promise<void>[] = [];
  let n = 0;
  for (;;) {
    const elapsed = performance.now() - start;
    if (elapsed >= o.durationMs) break;
    while (pendingSchedule.length > 0 && (pendingSchedule[0] as { atMs: number }).atMs <= elapsed) {
      const step = pendingSchedule.shift() as { run: () => void | Promise<void> };
      scheduleDone.push(Promise.resolve(step.run()));
    }
    const due = Math.floor(elapsed / intervalMs);
    while (n <= due && inflight.size < 400) {
      n++;
      const p = fire(o, recs).finally(() => inflight.delete(p));
      inflight.add(p);
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  await Promise.all(inflight);
  await Promise.all(scheduleDone);
  lag.disable();
  const cpu1 = machineCpuSeconds();
  const stealPct =
    cpu0 !== undefined && cpu1 !== undefined && cpu1.total > cpu0.total
      ? Math.round((1000 * (cpu1.steal - cpu0.steal)) / (cpu1.total - cpu0.total)) / 10
      : 0;
  return { recs, clientLagMaxMs: Math.round(lag.max / 1e5) / 10, stealPct };
}

function pickRetry(recs: Rec[], now: number): Rec | undefined {
  for (let i = 0; i < 5; i++) {
    const r = recs[recs.length - 1 - Math.floor(Math.random() * Math.min(recs.length, 200))];
    if (r !== undefined && !r.retry && now - r.sentAtMs < 2000) return r;
  }
  return undefined;
}

async function fire(o: LoadOptions, recs: Rec[]): Promise<void> {
  const now = Date.now();
  const earlier = Math.random() < o.retryFraction ? pickRetry(recs, now) : undefined;
  let rec: Rec;
  if (earlier !== undefined) {
    rec = { ...earlier, sentAtMs: now, retry: true, latencyMs: -1, status: 0, text: '', json: {}, error: '' };
  } else {
    const shopper = o.shoppers[Math.floor(Math.random() * o.shoppers.length)] as string;
    const amountCents = 100 + Math.floor(Math.random() * 14_900); // 1.00 .. 149.99: some above the cap
    const key = `txn_${randomBytes(8).toString('hex')}`;
    const body = JSON.stringify({
      transaction_id: key,
      shopper_id: shopper,
      amount: `${Math.floor(amountCents / 100)}.${String(amountCents % 100).padStart(2, '0')}`,
      currency: 'USD',
      merchant: { name: 'SAFEWAY #1234', address: '123 MAIN STREET' },
    });
    rec = {
      key,
      shopper,
      amountCents,
      body,
      sentAtMs: now,
      retry: false,
      latencyMs: -1,
      status: 0,
      text: '',
      json: {},
      error: '',
    };
  }
  recs.push(rec);
  const base = o.target();
  if (base === undefined) {
    rec.error = 'no api';
    return;
  }
  const t = Math.floor(Date.now() / 1000);
  const started = performance.now();
  try {
    const res = await fetch(`${base}/v1/authorizations`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Signature': signatureHeader(SECRET, t, rec.body) },
      body: rec.body,
      signal: AbortSignal.timeout(CLIENT_TIMEOUT_MS),
    });
    rec.text = await res.text();
    rec.status = res.status;
    rec.latencyMs = performance.now() - started;
    rec.json = JSON.parse(rec.text);
  } catch (err) {
    rec.error = (err as Error).name === 'TimeoutError' ? 'timeout' : (err as Error).message;
  }
}

// ---- checks --------------------------------------------------------------

export interface WalEvent {
  readonly partition: number;
  readonly id: string;
  readonly e: string;
  readonly t: string;
  readonly d: Record<string, unknown>;
}

export async function readWal(redis: Redis, prefix: string, partitions: number): Promise<WalEvent[]> {
  const keys = new Keys(prefix, partitions);
  const out: WalEvent[] = [];
  for (let p = 0; p < partitions; p++) {
    for (const [id, fields] of await redis.xrange(keys.wal(p), '-', '+')) {
      const f: Record<string, string> = {};
      for (let i = 0; i < fields.length; i += 2) f[fields[i] as string] = fields[i + 1] as string;
      out.push({ partition: p, id, e: f['e'] ?? '', t: f['t'] ?? '', d: walPayload(f) });
    }
  }
  return out;
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

export interface FaultReport {
  fault: string;
  sent: number;
  answered: number;
  unanswered: number;
  normal_approvals: number;
  failopen_approvals: number;
  failclosed_declines: number;
  other_declines: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  journal_entries: number;
  replayed: number;
  replay_outcomes: Record<string, number>;
  lost: number;
  problems: string[];
  /** 1-min load average of the machine when the fault ended. */
  load_avg?: number;
  /** Worst event-loop stall of the load generator, and of the api (nodejs_eventloop_lag_max_seconds), ms. */
  client_lag_max_ms?: number;
  api_lag_max_ms?: number;
  /** CPU time stolen by the hypervisor during the load, % of the machine. */
  steal_pct?: number;
}

export interface CheckInput {
  readonly fault: string;
  readonly recs: readonly Rec[];
  readonly wal: readonly WalEvent[];
  readonly maxCents: number;
  readonly shopperMaxCents: number;
  /** Authorized totals per trip id as Redis has them now, and the base they started from (hydrate). */
  readonly tripTotals: ReadonlyMap<string, number>;
  readonly tripBase?: ReadonlyMap<string, number>;
  /** Only WAL events from this stream position on are compared with the trips (after a data loss). */
  readonly journalEntries: number;
}

/** Every guarantee of docs/failopen.md, checked on one run; problems are listed, not thrown. */
export function check(input: CheckInput): FaultReport {
  const problems: string[] = [];
  const { recs, wal } = input;
  const answered = recs.filter((r) => r.status === 200 || r.status === 402);
  const latencies = answered.map((r) => r.latencyMs);
  const kinds = answerKinds(answered);
  checkUnanswered(recs, problems);
  checkCaps(kinds.failOpen, input, problems);
  checkRetriesIdentical(answered, problems);
  const { replayedById, outcomes } = walReplays(wal);
  const lost = checkReplayedOnce(kinds.failOpen, replayedById, problems);
  checkCounted(input, problems);
  return {
    fault: input.fault,
    sent: recs.length,
    answered: answered.length,
    unanswered: recs.length - answered.length,
    normal_approvals: kinds.normal,
    failopen_approvals: kinds.failOpen.size,
    failclosed_declines: kinds.failClosed,
    other_declines: kinds.otherDeclines,
    p50_ms: round(percentile(latencies, 50)),
    p99_ms: round(percentile(latencies, 99)),
    max_ms: round(Math.max(...latencies)),
    journal_entries: input.journalEntries,
    replayed: [...replayedById.values()].reduce((n, l) => n + l.length, 0),
    replay_outcomes: outcomes,
    lost,
    problems: problems.slice(0, 20),
  };
}

/** The answers by kind; fail-open approvals by authorization id (first answer). */
function answerKinds(answered: readonly Rec[]) {
  const failOpen = new Map<string, Rec>();
  let normal = 0;
  let failClosed = 0;
  let otherDeclines = 0;
  for (const r of answered) {
    if (r.status === 200 && r.json['mode'] === 'fail_open') {
      if (!failOpen.has(r.json['authorization_id'] as string))
        failOpen.set(r.json['authorization_id'] as string, r);
    } else if (r.status === 200) normal++;
    else if (r.json['reason'] === 'STORAGE_UNAVAILABLE') failClosed++;
    else otherDeclines++;
  }
  return { failOpen, normal, failClosed, otherDeclines };
}

/** One line per kind of non-answer, with when they were sent: a stall shows as a narrow window. */
function checkUnanswered(recs: readonly Rec[], problems: string[]): void {
  const t0 = recs[0]?.sentAtMs ?? 0;
  const unansweredByKind = new Map<string, number[]>();
  for (const r of recs) {
    if (r.status === 200 || r.status === 402 || r.error === 'no api') continue;
    const kind = r.error || String(r.status);
    unansweredByKind.set(kind, [...(unansweredByKind.get(kind) ?? []), r.sentAtMs - t0]);
  }
  for (const [kind, at] of unansweredByKind)
    problems.push(`not answered: ${kind} x${at.length}, sent at +${Math.min(...at)}..+${Math.max(...at)} ms`);
}

/** Caps: each approval, and each shopper's fail-open total (one window spans the whole run). */
function checkCaps(failOpen: Map<string, Rec>, input: CheckInput, problems: string[]): void {
  const perShopper = new Map<string, number>();
  for (const r of failOpen.values()) {
    if (r.amountCents > input.maxCents) problems.push(`fail-open approval of ${r.amountCents} above the cap`);
    perShopper.set(r.shopper, (perShopper.get(r.shopper) ?? 0) + r.amountCents);
  }
  for (const [s, total] of perShopper) {
    if (total > input.shopperMaxCents) problems.push(`shopper ${s} fail-open total ${total} above the cap`);
  }
}

/** Identical answers: every retry of a key first answered by a fail-open approval. */
function checkRetriesIdentical(answered: readonly Rec[], problems: string[]): void {
  const firstByKey = new Map<string, Rec>();
  for (const r of [...answered].sort((a, b) => a.sentAtMs - b.sentAtMs)) {
    const first = firstByKey.get(r.key);
    if (first === undefined) firstByKey.set(r.key, r);
    else if (first.status === 200 && first.json['mode'] === 'fail_open' && r.text !== first.text) {
      problems.push(`retry of fail-open key ${r.key} answered differently: ${r.text} vs ${first.text}`);
    }
  }
}

function walReplays(wal: readonly WalEvent[]) {
  const replayedById = new Map<string, WalEvent[]>();
  const outcomes: Record<string, number> = {};
  for (const e of wal) {
    if (e.t !== 'failopen.replayed') continue;
    const id = e.d['authorization_id'] as string;
    replayedById.set(id, [...(replayedById.get(id) ?? []), e]);
    const o = e.d['replay_outcome'] as string;
    outcomes[o] = (outcomes[o] ?? 0) + 1;
  }
  return { replayedById, outcomes };
}

/** Exactly once in the WAL; nothing lost. Returns how many were lost. */
function checkReplayedOnce(
  failOpen: Map<string, Rec>,
  replayedById: Map<string, WalEvent[]>,
  problems: string[],
): number {
  let lost = 0;
  for (const id of failOpen.keys()) {
    const n = replayedById.get(id)?.length ?? 0;
    if (n === 0) lost++;
    if (n > 1) problems.push(`fail-open approval ${id} is ${n} times in the WAL`);
  }
  if (lost > 0) problems.push(`${lost} fail-open approvals missing from the WAL`);
  return lost;
}

/** No key counted twice; each trip's total is exactly what was counted. */
function checkCounted(input: CheckInput, problems: string[]): void {
  const countedByKey = new Map<string, number>();
  const countedByTrip = new Map<string, number>();
  for (const e of input.wal) {
    const counts =
      (e.t === 'authorization.decided' && e.d['decision'] === 'approved') ||
      (e.t === 'failopen.replayed' && e.d['replay_outcome'] === 'applied');
    if (!counts) continue;
    const key = e.d['idempotency_key'] as string;
    countedByKey.set(key, (countedByKey.get(key) ?? 0) + 1);
    const trip = e.d['trip_id'] as string | null;
    if (trip) countedByTrip.set(trip, (countedByTrip.get(trip) ?? 0) + (e.d['amount_cents'] as number));
  }
  for (const [key, n] of countedByKey) if (n > 1) problems.push(`key ${key} counted ${n} times`);
  for (const [trip, total] of input.tripTotals) {
    const expected = (input.tripBase?.get(trip) ?? 0) + (countedByTrip.get(trip) ?? 0);
    if (total !== expected) problems.push(`trip ${trip}: authorized ${total}, counted ${expected}`);
  }
}

function round(v: number): number {
  return Math.round(v * 10) / 10;
}

/** Authorized totals of every trip of these shoppers, straight from Redis. */
export async function tripTotals(
  redis: Redis,
  prefix: string,
  partitions: number,
  shoppers: readonly string[],
): Promise<Map<string, number>> {
  const keys = new Keys(prefix, partitions);
  const out = new Map<string, number>();
  for (const s of shoppers) {
    const trip = `trip_${s}`;
    const v = await redis.hget(keys.trip(keys.partition(s), s, trip), 'authorized_cents');
    out.set(trip, Number(v ?? 0));
  }
  return out;
}

/** Counts the "fail-open decision" log lines (one per decision) in a child's log, by decision. */
export function failOpenLogLines(logPath: string): { approved: number; declined: number } {
  const lines = readFileSync(logPath, 'utf8')
    .split('\n')
    .filter((l) => l.includes('"msg":"fail-open decision"'));
  const approved = lines.filter((l) => l.includes('"decision":"approved"')).length;
  return { approved, declined: lines.length - approved };
}
