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
// The probe is a PING rather than a real swipe so that no card decision is
// ever sent into a Redis that may execute it after we have stopped waiting.

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
    try {
      const value = await withDeadline(fn(), this.options.deadlineMs);
      this.failures = 0;
      return value;
    } catch (err) {
      this.recordFailure();
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
