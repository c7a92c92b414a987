// How busy this process is, measured cheaply (docs/failopen.md "Overload is
// not a storage failure"):
// - event-loop stall: a timer every SAMPLE_MS; how late it fires is time the
//   loop spent on other work. `stalledMs()` is a monotone total (plus the
//   lateness of the sample timer that is overdue right now), so the stall
//   inside any window is the difference of two readings;
// - Redis progress: replies received on the request-path client (a counter
//   bumped by ScriptRunner), so a deadline can tell "Redis answers, we are
//   slow to read" from "Redis does not answer";
// - admission counters: requests in flight and body bytes held, with limits
//   from config (API_INFLIGHT_REQUESTS_MAX, API_QUEUED_BODY_BYTES_MAX,
//   OVERLOAD_LOOP_LAG_MS).
import { performance } from 'node:perf_hooks';

/** Period of the stall sampler, ms: one cheap timer per pod. */
export const LOOP_SAMPLE_MS = 5;
/** Recent lag = the largest sample lateness in the last this many samples (100 ms). */
const RECENT_SAMPLES = 20;

export interface AdmissionLimits {
  readonly inflightRequestsMax: number;
  readonly queuedBodyBytesMax: number;
  readonly loopLagMaxMs: number;
}

export type Admission = 'ok' | 'inflight' | 'bytes' | 'lag';

export class LoadMonitor {
  private timer: NodeJS.Timeout | undefined;
  private nextExpected = 0;
  private stalledTotalMs = 0;
  private readonly recent = new Float64Array(RECENT_SAMPLES);
  private recentAt = 0;
  private replies = 0;
  inflight = 0;
  queuedBytes = 0;
  /** Requests refused at the door, by cause (metrics read this). */
  readonly shed = { inflight: 0, bytes: 0, lag: 0 };

  constructor(readonly limits: AdmissionLimits) {
    if (!(limits.inflightRequestsMax >= 1 && limits.queuedBodyBytesMax >= 1 && limits.loopLagMaxMs >= 1))
      throw new Error('LoadMonitor: limits must be positive');
  }

  start(): void {
    if (this.timer !== undefined) return;
    this.nextExpected = performance.now() + LOOP_SAMPLE_MS;
    const tick = (): void => {
      const now = performance.now();
      const late = Math.max(0, now - this.nextExpected);
      this.stalledTotalMs += late;
      this.recent[this.recentAt] = late;
      this.recentAt = (this.recentAt + 1) % RECENT_SAMPLES;
      this.nextExpected = now + LOOP_SAMPLE_MS;
      this.timer = setTimeout(tick, LOOP_SAMPLE_MS);
      this.timer.unref();
    };
    this.timer = setTimeout(tick, LOOP_SAMPLE_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Monotone total of loop stall, ms, including the sample timer overdue right now. */
  stalledMs(): number {
    if (this.timer === undefined) return this.stalledTotalMs;
    return this.stalledTotalMs + Math.max(0, performance.now() - this.nextExpected);
  }

  /** Largest stall of the last ~100 ms, or the current one if larger. */
  lagMs(): number {
    let max = this.timer === undefined ? 0 : Math.max(0, performance.now() - this.nextExpected);
    for (let i = 0; i < RECENT_SAMPLES; i++)
      if ((this.recent[i] as number) > max) max = this.recent[i] as number;
    return max;
  }

  /** Called for every reply (or error reply) read from the request-path Redis client. */
  replied(): void {
    this.replies++;
  }

  repliesSeen(): number {
    return this.replies;
  }

  /** May a request with `bytes` of declared body start now? Counts it as shed when not. */
  admit(bytes: number): Admission {
    const l = this.limits;
    let cause: Admission = 'ok';
    if (this.inflight >= l.inflightRequestsMax) cause = 'inflight';
    else if (this.queuedBytes + bytes > l.queuedBodyBytesMax) cause = 'bytes';
    else if (this.lagMs() > l.loopLagMaxMs) cause = 'lag';
    if (cause !== 'ok') this.shed[cause]++;
    return cause;
  }
}
