// Child processes and what the bench reads about them: start/stop by PID,
// readiness, RSS high-water mark and CPU time from /proc, Prometheus histograms.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createWriteStream, readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';

export interface Proc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** Last lines of stdout/stderr, for error messages. */
  readonly tail: string[];
  readonly exited: Promise<number | null>;
}

const TAIL_LINES = 40;

/** Pins every thread of a process to the given CPUs (taskset list syntax, e.g. "0" or "1"). */
export function pinTo(pid: number, cpus: string | undefined): void {
  if (cpus === undefined || cpus === '') return;
  const r = spawnSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
  if (r.status !== 0) throw new Error(`taskset -a -p -c ${cpus} ${pid} failed (exit ${r.status})`);
}

/**
 * Scheduling class for every thread of a process: 'idle' (SCHED_IDLE: it runs only on a core
 * nothing else wants) or 'fifo' (SCHED_FIFO priority 1: it runs as soon as it wakes).
 */
export function setSchedPolicy(pid: number, policy: 'idle' | 'fifo'): void {
  const args = policy === 'idle' ? ['-i', '-p', '0'] : ['-f', '-p', '1'];
  const r = spawnSync('chrt', ['-a', ...args, String(pid)], { stdio: 'ignore' });
  if (r.status !== 0) throw new Error(`chrt -a ${args.join(' ')} ${pid} failed (exit ${r.status})`);
}

export function startProc(
  name: string,
  args: string[],
  env: Record<string, string>,
  cpus?: string,
  /** Also append everything the process prints to this file (diagnostics, e.g. --trace-gc). */
  logFile?: string,
): Proc {
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const tail: string[] = [];
  const keep = (d: Buffer) => {
    for (const line of d.toString().split('\n')) {
      if (line.trim() === '') continue;
      tail.push(line.slice(0, 500));
      if (tail.length > TAIL_LINES) tail.shift();
    }
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  if (logFile !== undefined) {
    const out = createWriteStream(logFile, { flags: 'a' });
    child.stdout?.pipe(out);
    child.stderr?.pipe(out);
  }
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  if (child.pid === undefined) throw new Error(`${name}: spawn failed`);
  pinTo(child.pid, cpus);
  return { name, child, pid: child.pid, tail, exited };
}

/** SIGTERM by PID, then SIGKILL after graceMs. */
export async function stopProc(p: Proc, graceMs = 15_000): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  process.kill(p.pid, 'SIGTERM');
  const timer = setTimeout(() => {
    if (p.child.exitCode === null) process.kill(p.pid, 'SIGKILL');
  }, graceMs);
  await p.exited;
  clearTimeout(timer);
}

export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  p?: Proc,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (p !== undefined && p.child.exitCode !== null) {
      throw new Error(`${p.name} exited (${p.child.exitCode}) before ${what}:\n${p.tail.join('\n')}`);
    }
    if (await check().catch(() => false)) return;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}${p === undefined ? '' : `:\n${p.tail.join('\n')}`}`);
}

export function httpOk(url: string): () => Promise<boolean> {
  return async () => (await fetch(url, { signal: AbortSignal.timeout(1000) })).ok;
}

export function tcpOpen(port: number): () => Promise<boolean> {
  return () =>
    new Promise((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface MemStats {
  rssMiB: number;
  /** VmHWM: peak RSS since the process started. */
  peakRssMiB: number;
}

export function memStats(pid: number): MemStats | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
    return { rssMiB: round1(kb('VmRSS') / 1024), peakRssMiB: round1(kb('VmHWM') / 1024) };
  } catch {
    return undefined;
  }
}

/** user + system CPU seconds of a process (Linux clock ticks: 100/s). */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

/**
 * Seconds the process's threads spent runnable but waiting for a core (run_delay of
 * /proc/<pid>/task/<tid>/schedstat, summed over threads): CPU contention, the cost of sharing
 * two cores, which CPU time alone does not show.
 */
export function runQueueWaitSeconds(pid: number): number | undefined {
  try {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[1]);
      } catch {
        // thread exited meanwhile
      }
    }
    return ns / 1e9;
  } catch {
    return undefined;
  }
}

/** CPU seconds of every process whose command name is `comm` (e.g. all Postgres backends). */
export function cpuOfComm(comm: string): number {
  let total = 0;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/comm`, 'utf8').trim() !== comm) continue;
      total += cpuSeconds(Number(d)) ?? 0;
    } catch {
      // exited meanwhile
    }
  }
  return total;
}

const METRICS_REUSE_MS = 250;
let lastScrape: { port: number; atMs: number; text: Promise<string> } | undefined;

/**
 * One /metrics scrape, reused by the parsers below for METRICS_REUSE_MS: prom-client
 * resets its event-loop-lag histogram on every scrape, so a snapshot must be one scrape.
 */
function metricsText(port: number): Promise<string> {
  const now = Date.now();
  if (lastScrape !== undefined && lastScrape.port === port && now - lastScrape.atMs < METRICS_REUSE_MS) {
    return lastScrape.text;
  }
  const text = fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(2000) }).then((r) =>
    r.text(),
  );
  lastScrape = { port, atMs: now, text };
  return text;
}

/** Cumulative bucket counts of one Prometheus histogram, by upper bound (s). */
export interface PromHistogram {
  bounds: number[];
  counts: number[];
  count: number;
  sum: number;
}

export async function scrapeHistogram(metricsPort: number, name: string): Promise<PromHistogram | undefined> {
  try {
    const text = await metricsText(metricsPort);
    const bounds: number[] = [];
    const counts: number[] = [];
    let count = 0;
    let sum = 0;
    for (const line of text.split('\n')) {
      if (!line.startsWith(name)) continue;
      const b = new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\S+)`).exec(line);
      if (b !== null) {
        bounds.push(b[1] === '+Inf' ? Number.POSITIVE_INFINITY : Number(b[1]));
        counts.push(Number(b[2]));
      } else if (line.startsWith(`${name}_count `)) count = Number(line.split(' ')[1]);
      else if (line.startsWith(`${name}_sum `)) sum = Number(line.split(' ')[1]);
    }
    return bounds.length === 0 ? undefined : { bounds, counts, count, sum };
  } catch {
    return undefined;
  }
}

export interface ServiceLatency {
  count: number;
  meanMs: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  /** Share of decisions at or under 1 ms (an exact bucket bound). */
  fractionUnder1Ms: number;
}

/** after - before, percentiles by linear interpolation inside a bucket (as PromQL histogram_quantile). */
export function histogramDelta(before: PromHistogram, after: PromHistogram): ServiceLatency {
  const counts = after.counts.map((c, i) => c - (before.counts[i] ?? 0));
  const total = counts[counts.length - 1] ?? 0;
  const q = (p: number): number => {
    const rank = p * total;
    for (let i = 0; i < counts.length; i++) {
      if (counts[i]! >= rank) {
        const hi = after.bounds[i]!;
        if (!Number.isFinite(hi)) return after.bounds[i - 1]! * 1000;
        const lo = i === 0 ? 0 : after.bounds[i - 1]!;
        const below = i === 0 ? 0 : counts[i - 1]!;
        const inBucket = counts[i]! - below;
        return (lo + (hi - lo) * (inBucket === 0 ? 1 : (rank - below) / inBucket)) * 1000;
      }
    }
    return Number.NaN;
  };
  const oneMs = after.bounds.indexOf(0.001);
  return {
    count: total,
    meanMs: round3(total === 0 ? 0 : ((after.sum - before.sum) / total) * 1000),
    p50Ms: round3(q(0.5)),
    p99Ms: round3(q(0.99)),
    p999Ms: round3(q(0.999)),
    fractionUnder1Ms: oneMs < 0 || total === 0 ? Number.NaN : round4(counts[oneMs]! / total),
  };
}

export const round1 = (x: number) => Math.round(x * 10) / 10;
export const round3 = (x: number) => Math.round(x * 1000) / 1000;
export const round4 = (x: number) => Math.round(x * 10000) / 10000;

/** CPU seconds of the whole machine (all cores) so far, from the first line of /proc/stat. */
export interface MachineCpu {
  /** user + nice + system + irq + softirq + steal */
  readonly busy: number;
  /** time the hypervisor ran other guests while this one wanted a core */
  readonly steal: number;
  /** every field, idle and iowait included */
  readonly total: number;
}

export function machineCpuSeconds(): MachineCpu | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    // user nice system idle iowait irq softirq steal ...
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const f = (i: number) => (v[i] ?? 0) / 100;
    return {
      busy: f(0) + f(1) + f(2) + f(5) + f(6) + f(7),
      steal: f(7),
      total: v.reduce((a, b) => a + b, 0) / 100,
    };
  } catch {
    return undefined;
  }
}

/** Busy CPU seconds of the whole machine (all cores), steal included. */
export function machineBusySeconds(): number | undefined {
  return machineCpuSeconds()?.busy;
}

/** Sums of a Prometheus counter grouped by one label, e.g. swipe_decisions_total by mode. */
export async function scrapeCounterBy(
  metricsPort: number,
  name: string,
  label: string,
): Promise<Record<string, number> | undefined> {
  try {
    const text = await metricsText(metricsPort);
    const out: Record<string, number> = {};
    const re = new RegExp(`${label}="([^"]*)"`);
    for (const line of text.split('\n')) {
      if (!line.startsWith(`${name}{`)) continue;
      const key = re.exec(line)?.[1] ?? '';
      out[key] = (out[key] ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
    }
    return out;
  } catch {
    return undefined;
  }
}

export function counterDelta(
  before: Record<string, number> | undefined,
  after: Record<string, number> | undefined,
): Record<string, number> | undefined {
  if (before === undefined || after === undefined) return undefined;
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) {
    const d = v - (before[k] ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}

/** The value of an unlabelled gauge. */
export async function scrapeGauge(metricsPort: number, name: string): Promise<number | undefined> {
  try {
    const line = (await metricsText(metricsPort)).split('\n').find((l) => l.startsWith(`${name} `));
    return line === undefined ? undefined : Number(line.slice(name.length + 1));
  } catch {
    return undefined;
  }
}
