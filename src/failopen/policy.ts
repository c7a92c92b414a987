// The fail-open policy (DESIGN "Fail-open", docs/failopen.md): what the api
// answers when Redis cannot decide in time. Conservative and bounded:
// - approve only when amount <= FAILOPEN_MAX_CENTS and the shopper's fail-open
//   total in this pod over FAILOPEN_WINDOW_S stays <= FAILOPEN_SHOPPER_MAX_CENTS;
// - approve only what the journal accepted (a full journal declines);
// - every map is bounded; when a bound is hit the answer is a decline;
// - FAILOPEN_ENABLED=false declines everything (fail closed);
// - one structured log line and one metric per decision.
// Answers are kept per idempotency key so a retry gets the identical answer;
// an approval not yet replayed into Redis is answered from here even when
// Redis is healthy again (`held`), so Redis never decides that key a second time.
import type { Config } from '../config/config.js';
import { type StorageFallback, storageFallbackAnswer } from '../decisions/authorize.js';
import { redisErrorKind } from './breaker.js';
import type { SwipeRequest } from '../decisions/swipeRequest.js';
import { type Logger, logFailOpen } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { AuthorizeResult } from '../redis/results.js';
import type { FailOpenEntry, Journal } from './journal.js';
import type { StandIn } from './standIn.js';
import { uuidv7 } from '../domain/ids.js';
import { HomeUnreachableError } from '../regions/unreachable.js';

/** Approvals one shopper can have inside one window in this pod; more are declined. */
export const SHOPPER_APPROVALS_MAX = 64;
/** Sweep at most this many map entries per eviction pass (bounded work on the request path). */
const EVICT_SCAN_MAX = 256;

interface Answer {
  readonly fingerprint: string;
  result: AuthorizeResult;
  /** An approval still waiting in the journal to be replayed into Redis. */
  pending: boolean;
  /** Settles when the approval's journal write has (or has not) completed: retries wait for it. */
  written?: Promise<void>;
}

interface Spend {
  /** Flat [at_ms, cents, at_ms, cents, ...], oldest first. */
  readonly entries: number[];
}

export interface PolicyLimits {
  readonly enabled: boolean;
  /** Approve shoppers the stand-in knowledge has never seen (FAILOPEN_UNSEEN_SHOPPERS; default true). */
  readonly unseenShoppers?: boolean;
  readonly maxCents: number;
  readonly shopperMaxCents: number;
  readonly windowMs: number;
  /** Bound of the shopper map and of the answer map. */
  readonly shoppersMax: number;
  /** Fail-open approvals per shopper in any 60 s (MAX_SWIPES_PER_MINUTE, the velocity limit); none: unbounded. */
  readonly approvalsPerMinuteMax?: number;
}

export function limitsFrom(config: Config): PolicyLimits {
  return {
    enabled: config.failopenEnabled,
    unseenShoppers: config.failopenUnseenShoppers,
    maxCents: config.failopenMaxCents,
    shopperMaxCents: config.failopenShopperMaxCents,
    windowMs: config.failopenWindowS * 1000,
    shoppersMax: config.failopenShoppersMax,
    approvalsPerMinuteMax: config.maxSwipesPerMinute,
  };
}

/** Answers are also found by signature ("s:" cannot start an idempotency key, which is t:/h:/d:). */
function signatureKey(signature: string): string {
  return `s:${signature}`;
}

export class FailOpenPolicy implements StorageFallback {
  private readonly answers = new Map<string, Answer>();
  private readonly spend = new Map<string, Spend>();

  constructor(
    private readonly limits: PolicyLimits,
    private readonly journal: Journal,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
    /** What this pod learned from Redis's decisions (standIn.ts); none: blind caps only. */
    private readonly standIn?: StandIn,
  ) {
    // Approvals journaled before a restart still count against their shopper's
    // window (replayed or not); those not replayed are still owed to Redis.
    for (const sp of journal.spendInWindow()) this.count(sp.shopper, sp.at, sp.amount);
    for (const e of journal.pending()) this.remember(e);
    metrics.failopenJournalPending.set(journal.pendingCount());
  }

  /** The stored answer for a key whose fail-open approval is not replayed yet (checked before Redis). */
  held(request: SwipeRequest): Promise<AuthorizeResult> | undefined {
    const a = this.answerFor(request);
    if (a === undefined || !a.pending) return undefined;
    return this.replay(a, request);
  }

  async decide(
    request: SwipeRequest,
    authorizationId: string,
    nowMs: number,
    cause: unknown,
  ): Promise<AuthorizeResult> {
    const prior = this.answerFor(request);
    if (prior !== undefined) return this.replay(prior, request);

    const causeKind = redisErrorKind(cause);
    const windowCents = this.windowCents(request.shopperId, nowMs);
    const standIn = this.standIn?.verdict(request, windowCents, nowMs) ?? 'unseen';
    const known = standIn === 'allowed' || (standIn === 'unseen' && this.limits.unseenShoppers !== false);
    const withinCaps =
      this.limits.enabled &&
      known &&
      request.amountCents <= this.limits.maxCents &&
      windowCents + request.amountCents <= this.limits.shopperMaxCents &&
      this.underVelocity(request.shopperId, nowMs) &&
      this.hasRoom(request.shopperId);
    const answer: Answer = {
      fingerprint: request.fingerprint,
      result: storageFallbackAnswer(request, authorizationId, withinCaps),
      pending: withinCaps,
    };
    this.store(request.idempotencyKey, answer);
    // The same signed bytes with another Idempotency-Key are the same swipe (CONTRACT §1).
    if (request.signature !== undefined) this.store(signatureKey(request.signature), answer);
    if (withinCaps) {
      // Counted and stored before the write, so concurrent swipes of this
      // shopper and retries of this key see it while the disk works.
      this.count(request.shopperId, nowMs, request.amountCents);
      const entry = this.entryFor(request, authorizationId, nowMs, cause);
      answer.written = this.journal.append(entry).then((ok) => {
        if (ok) return;
        this.uncount(request.shopperId, nowMs, request.amountCents);
        answer.result = storageFallbackAnswer(request, authorizationId, false);
        answer.pending = false;
        this.logger.error({ journal: this.journal.path }, 'fail-open journal full or unwritable: declining');
      });
      await answer.written;
    }
    const approve = answer.result.reason === undefined;
    const decision = approve ? 'approved' : 'declined';
    this.metrics.failopen.inc({ decision });
    if (approve) this.metrics.failopenJournalPending.set(this.journal.pendingCount());
    logFailOpen(this.logger, authorizationId, {
      decision,
      amount_cents: request.amountCents,
      shopper_id: request.shopperId,
      cause: causeKind,
      idempotency_key: request.idempotencyKey,
      transaction_id: request.transactionId,
      authorization_id: authorizationId,
      shopper_window_cents: windowCents + (approve ? request.amountCents : 0),
      stand_in: standIn,
    });
    return answer.result;
  }

  /** The approval for this key is in Redis now: Redis answers its retries from here on. */
  markReplayed(idempotencyKey: string): void {
    const a = this.answers.get(idempotencyKey);
    if (a !== undefined) a.pending = false;
    this.metrics.failopenJournalPending.set(this.journal.pendingCount());
  }

  /**
   * Redis is healthy again: STORAGE_UNAVAILABLE declines are retryable, so they
   * are forgotten (Redis decides those keys). Approvals are kept for identical answers.
   */
  forgetDeclines(): void {
    for (const [key, a] of this.answers) if (a.result.reason !== undefined) this.answers.delete(key);
  }

  /** Shopper's fail-open total in the window ending at nowMs (test and log helper). */
  windowCents(shopperId: string, nowMs: number): number {
    const s = this.spend.get(shopperId);
    if (s === undefined) return 0;
    this.expire(s, nowMs);
    let total = 0;
    for (let i = 1; i < s.entries.length; i += 2) total += s.entries[i] as number;
    return total;
  }

  sizes(): { answers: number; shoppers: number } {
    return { answers: this.answers.size, shoppers: this.spend.size };
  }

  private async replay(a: Answer, request: SwipeRequest): Promise<AuthorizeResult> {
    if (a.written !== undefined) await a.written;
    if (a.fingerprint === request.fingerprint) return { ...a.result, replayed: true };
    return {
      reason: 'IDEMPOTENCY_CONFLICT',
      authorizationId: a.result.authorizationId,
      tripId: '',
      amountCents: request.amountCents,
      remainingCents: 0,
      mode: 'fail_open',
      replayed: false,
    };
  }

  private entryFor(
    request: SwipeRequest,
    authorizationId: string,
    nowMs: number,
    cause: unknown,
  ): FailOpenEntry {
    return {
      // Another region's shopper: the approval is replayed into that home region.
      ...(cause instanceof HomeUnreachableError ? { home: cause.home } : {}),
      id: authorizationId,
      ev: uuidv7(nowMs),
      at: nowMs,
      shopper: request.shopperId,
      amount: request.amountCents,
      remaining: 0,
      currency: request.currency,
      idem: request.idempotencyKey,
      fp: request.fingerprint,
      txn: request.transactionId ?? '',
      mname: request.merchantName,
      maddr: request.merchantAddress,
      lat: request.lat,
      lng: request.lng,
      ...(request.signature === undefined ? {} : { sig: request.signature }),
      ...(request.processor === undefined
        ? {}
        : {
            proc: [
              request.processor.processor,
              request.processor.cardId,
              request.processor.authorizationRef,
              request.processor.requestId,
            ] as const,
          }),
    };
  }

  private remember(e: FailOpenEntry): void {
    const result: AuthorizeResult = {
      reason: undefined,
      authorizationId: e.id,
      tripId: '',
      amountCents: e.amount,
      remainingCents: e.remaining,
      mode: 'fail_open',
      replayed: false,
    };
    // Pending approvals are never evicted, so restore may pass the soft bound.
    const answer: Answer = { fingerprint: e.fp, result, pending: true };
    this.answers.set(e.idem, answer);
    if (e.sig !== undefined) this.answers.set(signatureKey(e.sig), answer);
    this.count(e.shopper, e.at, e.amount);
  }

  /** The trip's velocity limit holds for fail-open approvals too (a pod's own, in the last 60 s). */
  private underVelocity(shopperId: string, nowMs: number): boolean {
    const max = this.limits.approvalsPerMinuteMax;
    const s = this.spend.get(shopperId);
    if (max === undefined || s === undefined) return true;
    let recent = 0;
    for (let i = 0; i < s.entries.length; i += 2) if ((s.entries[i] as number) > nowMs - 60_000) recent++;
    return recent < max;
  }

  /** Room for one more approval of this shopper (bounded maps, conservative when full). */
  private hasRoom(shopperId: string): boolean {
    const s = this.spend.get(shopperId);
    if (s !== undefined) return s.entries.length / 2 < SHOPPER_APPROVALS_MAX;
    if (this.spend.size < this.limits.shoppersMax) return true;
    this.evictShoppers();
    return this.spend.size < this.limits.shoppersMax;
  }

  private count(shopperId: string, atMs: number, cents: number): void {
    let s = this.spend.get(shopperId);
    if (s === undefined) {
      s = { entries: [] };
      this.spend.set(shopperId, s);
    }
    s.entries.push(atMs, cents);
  }

  /** Takes back a count whose journal write failed (the swipe is declined after all). */
  private uncount(shopperId: string, atMs: number, cents: number): void {
    const s = this.spend.get(shopperId);
    if (s === undefined) return;
    for (let i = s.entries.length - 2; i >= 0; i -= 2) {
      if (s.entries[i] === atMs && s.entries[i + 1] === cents) {
        s.entries.splice(i, 2);
        return;
      }
    }
  }

  private expire(s: Spend, nowMs: number): void {
    let drop = 0;
    while (drop < s.entries.length && (s.entries[drop] as number) <= nowMs - this.limits.windowMs) drop += 2;
    if (drop > 0) s.entries.splice(0, drop);
  }

  private evictShoppers(): void {
    const now = Date.now();
    let scanned = 0;
    for (const [id, s] of this.spend) {
      if (scanned++ >= EVICT_SCAN_MAX) break;
      this.expire(s, now);
      if (s.entries.length === 0) this.spend.delete(id);
    }
  }

  /** Stores an answer; when full, evicts the oldest answers that are not pending approvals. */
  /** This request's answer: by idempotency key, else by the signature it was accepted with. */
  private answerFor(request: SwipeRequest): Answer | undefined {
    const byKey = this.answers.get(request.idempotencyKey);
    if (byKey !== undefined || request.signature === undefined) return byKey;
    return this.answers.get(signatureKey(request.signature));
  }

  private store(key: string, answer: Answer): void {
    if (this.answers.size >= this.limits.shoppersMax) {
      let scanned = 0;
      for (const [k, a] of this.answers) {
        if (scanned++ >= EVICT_SCAN_MAX || this.answers.size < this.limits.shoppersMax) break;
        if (!a.pending) this.answers.delete(k);
      }
    }
    // A pending approval is always kept (it must not be decided twice); a
    // decline that finds no room is simply not remembered.
    if (answer.pending || this.answers.size < this.limits.shoppersMax) this.answers.set(key, answer);
  }
}
