// Stand-in knowledge (docs/failopen.md "Stand-in"): what this pod learned from
// Redis's own decisions and from the trip API, kept so that the fail-open
// policy is not blind, as a card processor's stand-in balances are not:
// - a shopper Redis declined UNKNOWN_SHOPPER (no trip) or TRIP_CLOSED /
//   NO_ACTIVE_TRIP (no open trip): fail-open declines them;
// - a merchant Redis declined MERCHANT_MISMATCH for a shopper: declined;
// - the allowance left after the last decision Redis made for the shopper's
//   trip: fail-open approves at most that, minus what it already approved.
// Bounded (STANDIN_SHOPPERS_MAX, oldest forgotten first) and aged
// (STANDIN_TTL_S): an old fact is not used. A shopper this pod never saw is
// approved under the blind caps only when FAILOPEN_UNSEEN_SHOPPERS is true.
import type { SwipeRequest } from '../decisions/swipeRequest.js';
import type { AuthorizeResult } from '../redis/results.js';

/** Merchants remembered as mismatched per shopper. */
const MISMATCHED_MERCHANTS_MAX = 4;

type TripState = 'no_trip' | 'not_open' | 'open';

interface Known {
  state: TripState;
  atMs: number;
  /** Allowance left after Redis's last decision on the open trip; undefined: not known. */
  remainingCents: number | undefined;
  mismatched: string[];
}

export type StandInVerdict =
  | 'unseen'
  | 'allowed'
  | 'no_trip'
  | 'trip_not_open'
  | 'merchant_mismatch'
  | 'above_last_known_allowance';

export interface StandInLimits {
  readonly shoppersMax: number;
  readonly ttlMs: number;
  /**
   * false with peer regions (CONTRACT §8): UNKNOWN_SHOPPER here means "not in this region",
   * not "no trip", so it is not learned (the shopper's home may be silent later).
   */
  readonly unknownMeansNoTrip?: boolean;
}

export class StandIn {
  private readonly known = new Map<string, Known>();

  constructor(private readonly limits: StandInLimits) {
    if (!(limits.shoppersMax >= 1 && limits.ttlMs >= 1)) throw new Error('StandIn: limits must be positive');
  }

  /** Learns from a decision Redis made (never from fail-open answers). */
  learnDecision(request: SwipeRequest, result: AuthorizeResult, nowMs: number): void {
    if (result.mode !== 'normal' || result.replayed) return; // a replay's allowance is from its own time
    switch (result.reason) {
      case 'UNKNOWN_SHOPPER':
        if (this.limits.unknownMeansNoTrip !== false)
          this.put(request.shopperId, 'no_trip', undefined, nowMs);
        return;
      case 'TRIP_CLOSED':
      case 'NO_ACTIVE_TRIP':
        this.put(request.shopperId, 'not_open', undefined, nowMs);
        return;
      case 'MERCHANT_MISMATCH': {
        const k = this.touch(request.shopperId, nowMs);
        const m = merchantKey(request);
        if (!k.mismatched.includes(m)) {
          k.mismatched.push(m);
          if (k.mismatched.length > MISMATCHED_MERCHANTS_MAX) k.mismatched.shift();
        }
        return;
      }
      case undefined:
      case 'AMOUNT_EXCEEDS_ALLOWANCE':
        this.put(request.shopperId, 'open', result.remainingCents, nowMs);
        return;
      default:
        return; // velocity, location, currency, idempotency: say nothing about the trip's state
    }
  }

  /** Trip API: a trip was created or read (allowance known), or closed. */
  learnTrip(shopperId: string, open: boolean, allowanceCents: number | undefined, nowMs: number): void {
    this.put(shopperId, open ? 'open' : 'not_open', open ? allowanceCents : undefined, nowMs);
  }

  /** Picks raise the allowance: a remembered lower one would only be stricter, so it is dropped. */
  forgetAllowance(shopperId: string): void {
    const k = this.known.get(shopperId);
    if (k !== undefined) k.remainingCents = undefined;
  }

  /**
   * What the pod knows against approving `request` without Redis, given the
   * shopper's fail-open total already approved in the window.
   */
  verdict(request: SwipeRequest, failOpenWindowCents: number, nowMs: number): StandInVerdict {
    const k = this.known.get(request.shopperId);
    if (k === undefined || nowMs - k.atMs > this.limits.ttlMs) return 'unseen';
    if (k.state === 'no_trip') return 'no_trip';
    if (k.state === 'not_open') return 'trip_not_open';
    if (k.mismatched.includes(merchantKey(request))) return 'merchant_mismatch';
    if (k.remainingCents !== undefined && request.amountCents + failOpenWindowCents > k.remainingCents)
      return 'above_last_known_allowance';
    return 'allowed';
  }

  get size(): number {
    return this.known.size;
  }

  private touch(shopperId: string, nowMs: number): Known {
    let k = this.known.get(shopperId);
    if (k === undefined || nowMs - k.atMs > this.limits.ttlMs) {
      k = { state: 'open', atMs: nowMs, remainingCents: undefined, mismatched: [] };
    }
    k.atMs = nowMs;
    this.remember(shopperId, k);
    return k;
  }

  private put(shopperId: string, state: TripState, remainingCents: number | undefined, nowMs: number): void {
    const k = this.touch(shopperId, nowMs);
    if (state !== 'open') k.mismatched = [];
    k.state = state;
    k.remainingCents = remainingCents;
  }

  /** Re-inserted at the end (most recent); the oldest entry goes when full. */
  private remember(shopperId: string, k: Known): void {
    this.known.delete(shopperId);
    this.known.set(shopperId, k);
    if (this.known.size > this.limits.shoppersMax) {
      const oldest = this.known.keys().next().value;
      if (oldest !== undefined) this.known.delete(oldest);
    }
  }
}

function merchantKey(request: SwipeRequest): string {
  return `${request.merchantNameNorm}\u0000${request.merchantAddressNorm}`;
}
