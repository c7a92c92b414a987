// Deadline + circuit breaker for request-path Redis calls (docs/failopen.md).
//
// closed     calls go to Redis, each raced against a hard deadline
//            (DECISION_TIMEOUT_MS); `failuresToOpen` consecutive failures or
//            timeouts open the circuit.
// open       calls fail at once (no Redis traffic, so a frozen Redis does not
//            pile up commands that would execute late); after `openMs` a probe
//            runs.
// half_open  one background probe (PING under the same deadline) is in flight;
//            calls still fail at once. Success closes the circuit; failure
//            opens it again with the wait doubled (capped at `openMsMax`).
//
// The deadline measures the Redis call, not time queued in this process
// (withRedisDeadline): when the pod itself is the slow part the call fails
// with OverloadedError, which the breaker does not count and the api answers
// with 503 overloaded, never with the fail-open policy.
//
// The probe is a PING rather than a real swipe so that no card decision is
// ever sent into a Redis that may execute it after we have stopped waiting.
import { ReplyError } from 'ioredis';
import type { RedisErrorKind } from '../observability/metrics.js';
import { PartitionNotReadyError, UnexpectedScriptResultError } from '../redis/results.js';

export type BreakerState = 'closed' | 'half_open' | 'open';

/** Gauge values of redis_circuit_state. */
export const BREAKER_STATE_VALUE: Readonly<Record<BreakerState, number>> = {
  closed: 0,
  half_open: 1,
  open: 2,
};

export class BreakerOpenError extends Error {
  constructor() {
    super('circuit breaker open');
    this.name = 'BreakerOpenError';
  }
}

export class DeadlineError extends Error {
  constructor(deadlineMs: number) {
    super(`Redis call timed out after ${deadlineMs} ms`);
    this.name = 'DeadlineError';
  }
}

/**
 * The call was not answered in time because this process is overloaded (its
 * event loop stalled, or Redis was answering the calls queued ahead of ours):
 * not a Redis failure. Never counted by the breaker, never a reason to fail
 * open: the api answers 503 overloaded (CONTRACT §1).
 */
export class OverloadedError extends Error {
  constructor(
    elapsedMs: number,
    /** The call given up on: it may still be decided by Redis (the api flags such an approval late). */
    readonly abandoned?: Promise<unknown>,
  ) {
    super(`pod overloaded: no Redis answer read within ${Math.round(elapsedMs)} ms`);
    this.name = 'OverloadedError';
  }
}

/** What the deadline reads to tell Redis's slowness from ours (src/http/loadMonitor.ts). */
export interface LoadSignals {
  /** Monotone total of event-loop stall, ms. */
  stalledMs(): number;
  /** Monotone count of replies read from the request-path Redis client. */
  repliesSeen(): number;
}

export interface BreakerOptions {
  /** Hard deadline per call, ms (DECISION_TIMEOUT_MS). */
  readonly deadlineMs: number;
  /** Consecutive failures (errors or timeouts) that open the circuit. */
  readonly failuresToOpen: number;
  /** First wait before a probe, ms; doubles after each failed probe. */
  readonly openMs: number;
  /** Cap of the wait before a probe, ms. */
  readonly openMsMax: number;
  /** Cheap health check run under the deadline while half-open (PING). */
  readonly probe: () => Promise<unknown>;
  /** Called on every state change (metrics, logs, policy housekeeping). */
  readonly onStateChange?: (state: BreakerState, previous: BreakerState) => void;
  /**
   * When given, the deadline measures the Redis call itself: loop stall is
   * not counted, and a call whose Redis connection keeps answering others is
   * waited for up to `overloadWaitMs` more, then fails with OverloadedError.
   */
  readonly load?: LoadSignals;
  /** Extra wait for an overloaded call, ms (OVERLOAD_WAIT_MS). */
  readonly overloadWaitMs?: number;
}

export const BREAKER_DEFAULTS = { failuresToOpen: 3, openMs: 100, openMsMax: 1000 } as const;

/** One shared instance: failing fast allocates nothing. */
const OPEN_ERROR = new BreakerOpenError();

export class CircuitBreaker {
  private current: BreakerState = 'closed';
  private failures = 0;
  private waitMs: number;
  private probeTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly options: BreakerOptions) {
    if (!(options.deadlineMs > 0 && options.failuresToOpen >= 1 && options.openMs > 0)) {
      throw new Error('breaker: deadlineMs, failuresToOpen and openMs must be positive');
    }
    if (options.openMsMax < options.openMs) throw new Error('breaker: openMsMax must be >= openMs');
    this.waitMs = options.openMs;
  }

  get state(): BreakerState {
    return this.current;
  }

  /** Runs fn under the deadline when the circuit is closed; throws BreakerOpenError otherwise. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.current !== 'closed') throw OPEN_ERROR;
    const { load, deadlineMs } = this.options;
    try {
      const value = await (load === undefined
        ? withDeadline(fn(), deadlineMs)
        : withRedisDeadline(fn(), deadlineMs, this.options.overloadWaitMs ?? 0, load));
      this.failures = 0;
      return value;
    } catch (err) {
      // Our own overload says nothing about Redis.
      if (!(err instanceof OverloadedError)) this.recordFailure();
      throw err;
    }
  }

  /** Stops probing (shutdown). The state stays as it is. */
  stop(): void {
    this.stopped = true;
    if (this.probeTimer !== undefined) clearTimeout(this.probeTimer);
    this.probeTimer = undefined;
  }

  private recordFailure(): void {
    this.failures++;
    if (this.current === 'closed' && this.failures >= this.options.failuresToOpen) this.open();
  }

  private open(): void {
    this.transition('open');
    if (this.stopped) return;
    this.probeTimer = setTimeout(() => void this.probe(), this.waitMs);
    this.probeTimer.unref();
  }

  private async probe(): Promise<void> {
    this.probeTimer = undefined;
    if (this.stopped || this.current !== 'open') return;
    this.transition('half_open');
    try {
      await withDeadline(this.options.probe(), this.options.deadlineMs);
    } catch {
      this.waitMs = Math.min(this.waitMs * 2, this.options.openMsMax);
      this.open();
      return;
    }
    this.failures = 0;
    this.waitMs = this.options.openMs;
    this.transition('closed');
  }

  private transition(next: BreakerState): void {
    const previous = this.current;
    if (previous === next) return;
    this.current = next;
    this.options.onStateChange?.(next, previous);
  }
}

/** Rejects with DeadlineError when p has not settled within ms (p's own late settlement is ignored). */
export function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  // One promise and one timer per call (no race array, no finally): this runs once per swipe.
  return new Promise<T>((resolve, reject) => {
    // Timers run before I/O callbacks in Node's loop: after an event-loop stall
    // a reply that already arrived would lose to an expired timer. Deferring the
    // rejection one turn (setImmediate runs after the poll phase) lets it win.
    const timer = setTimeout(() => setImmediate(() => reject(new DeadlineError(ms))), ms);
    p.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

/**
 * Like withDeadline, but the deadline counts only time the Redis call itself
 * could have been answered in:
 * - loop stall inside the window is subtracted (a reply may sit unread in the
 *   socket while the loop works on other requests);
 * - if a reply was read on the client within the last half deadline, Redis is
 *   answering: ours is queued behind our own load.
 * Either way the call is waited for, up to deadlineMs + overloadWaitMs in all,
 * then rejected with OverloadedError (never a fail-open cause). Only a call
 * that saw deadlineMs of an attentive loop and a silent Redis gets DeadlineError.
 */
export function withRedisDeadline<T>(
  p: Promise<T>,
  deadlineMs: number,
  overloadWaitMs: number,
  load: LoadSignals,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t0 = performance.now();
    const stall0 = load.stalledMs();
    let replies = load.repliesSeen();
    let lastReplyAt = -Infinity;
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const check = (): void => {
      if (settled) return;
      const now = performance.now();
      const seen = load.repliesSeen();
      if (seen !== replies) {
        replies = seen;
        lastReplyAt = now;
      }
      const elapsed = now - t0;
      const redisWait = elapsed - (load.stalledMs() - stall0);
      const answering = now - lastReplyAt < deadlineMs / 2;
      if (redisWait >= deadlineMs && !answering) {
        settled = true;
        reject(new DeadlineError(deadlineMs));
        return;
      }
      const budgetLeft = deadlineMs + overloadWaitMs - elapsed;
      if (budgetLeft <= 0) {
        settled = true;
        reject(new OverloadedError(elapsed, p));
        return;
      }
      const next = redisWait < deadlineMs ? deadlineMs - redisWait : deadlineMs / 2;
      arm(Math.max(1, Math.min(next, budgetLeft)));
    };
    // As in withDeadline: the check runs after the poll phase, so a reply already
    // in the socket is read (and wins) first.
    const arm = (ms: number): void => {
      timer = setTimeout(() => setImmediate(check), ms);
    };
    arm(deadlineMs);
    p.then(
      (value) => {
        if (timer !== undefined) clearTimeout(timer);
        if (settled) return;
        settled = true;
        resolve(value);
      },
      (err: unknown) => {
        if (timer !== undefined) clearTimeout(timer);
        if (settled) return;
        settled = true;
        reject(err);
      },
    );
  });
}

/** ioredis's own command timeout (commandTimeout) rejects with this untyped error. */
const IOREDIS_COMMAND_TIMEOUT = 'Command timed out';

/**
 * What kind of Redis failure an error is (redis_errors_total{kind}, the fail-open log's cause), by
 * its type: a reply Redis gave (a script error) or our decoder refused is `script`; the deadline
 * or ioredis's timeout `timeout`; the open breaker `breaker_open`; a partition not hydrated yet
 * `not_hydrated`; anything else did not reach Redis or got no reply: `connection`.
 */
export function redisErrorKind(err: unknown): RedisErrorKind {
  if (err instanceof PartitionNotReadyError) return 'not_hydrated';
  if (err instanceof BreakerOpenError) return 'breaker_open';
  if (err instanceof DeadlineError) return 'timeout';
  if (err instanceof ReplyError || err instanceof UnexpectedScriptResultError) return 'script';
  if (err instanceof Error && err.message === IOREDIS_COMMAND_TIMEOUT) return 'timeout';
  return 'connection';
}
