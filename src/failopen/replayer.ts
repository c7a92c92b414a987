// Replays the fail-open journal into Redis once Redis is healthy again
// (docs/failopen.md): one replayFailOpen call per approval, oldest first, in
// bounded batches, on a background client with its own (longer) deadline.
// The script is idempotent on the authorization id and the idempotency key,
// so a crash anywhere in here at worst repeats a call that then does nothing.
import type { Config } from '../config/config.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Keys } from '../redis/keys.js';
import { replayFailOpen } from '../redis/commands.js';
import type { ReplayResult } from '../redis/results.js';
import type { ScriptRunner } from '../redis/scripts.js';
import type { FailOpenEntry, Journal, ReplayOutcome } from './journal.js';
import type { FailOpenPolicy } from './policy.js';

/** Approvals replayed per tick. */
export const REPLAY_BATCH_MAX = 200;
/** How often the replayer looks for work while entries are pending. */
export const REPLAY_INTERVAL_MS = 200;
/**
 * An approval for a partition whose state is not known intact (no meta key:
 * Redis lost data, hydrate pending or in progress) waits for hydrate up to this
 * age; after it, it is replayed anyway so that it at least reaches the WAL and
 * reconciliation (it may then miss a key Redis had decided before the loss).
 */
export const REPLAY_DEFER_MAX_MS = 10 * 60_000;

/**
 * An approval is replayed only once it is this old: its own timed-out Redis
 * call, if it is still on its way, lands first in the common case, so the
 * replay sees Redis's late decision and records it (`overridden`,
 * `already_decided`) instead of the late call finding the replay's answer.
 * Either order keeps the answer given; this one keeps Redis's view for review.
 */
export const REPLAY_SETTLE_MS = 500;

/** At most one "waiting for hydrate" line per this interval. */
const DEFERRED_LOG_INTERVAL_MS = 10_000;

export { decodeReplayResult, type ReplayCode, type ReplayResult } from '../redis/results.js';

export interface ReplayerDeps {
  readonly config: Config;
  readonly keys: Keys;
  /** A background client's runner (not the request-path one). */
  readonly scripts: ScriptRunner;
  readonly journal: Journal;
  readonly policy: FailOpenPolicy;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Replays only while this says Redis is healthy (breaker closed). */
  readonly healthy: () => boolean;
  /** An approval given for another region's shopper goes to that home region (src/regions/regions.ts). */
  readonly sendHome?: (entry: FailOpenEntry) => Promise<ReplayResult>;
  readonly now?: () => number;
}

export interface ReplayTickStats {
  replayed: number;
  deferred: number;
  failed: number;
}

export class Replayer {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<ReplayTickStats> | undefined;
  private stopped = false;
  private readonly now: () => number;
  private deferredLoggedMs = 0;

  constructor(private readonly deps: ReplayerDeps) {
    this.now = deps.now ?? Date.now;
  }

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  /** Stops the loop and waits for the tick in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.running !== undefined) await this.running;
  }

  /** One bounded pass over the pending approvals. Never throws. */
  tick(): Promise<ReplayTickStats> {
    if (this.running !== undefined) return this.running;
    this.running = this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(async () => {
      this.timer = undefined;
      await this.tick();
      this.schedule(REPLAY_INTERVAL_MS);
    }, ms);
    this.timer.unref();
  }

  private async pass(): Promise<ReplayTickStats> {
    const stats: ReplayTickStats = { replayed: 0, deferred: 0, failed: 0 };
    const { journal } = this.deps;
    if (journal.pendingCount() === 0 || !this.deps.healthy()) return stats;
    for (const entry of journal.pending(REPLAY_BATCH_MAX)) {
      if (this.stopped || !this.deps.healthy()) break;
      if (this.now() - entry.at < REPLAY_SETTLE_MS) break; // oldest first: the rest are younger
      let result: ReplayResult;
      try {
        result = await this.replayOne(entry);
      } catch (err) {
        stats.failed++;
        this.deps.logger.warn(
          { err: (err as Error).message, authorization_id: entry.id },
          'fail-open replay failed',
        );
        // A silent home region holds up only its own entries; Redis trouble: try again next tick.
        if (entry.home === undefined && !/refused/.test((err as Error).message)) break;
        continue; // a bad entry (logged): the others still go
      }
      if (result.code === 'deferred') {
        stats.deferred++;
        continue;
      }
      stats.replayed++;
      this.settle(entry, result);
    }
    if (stats.deferred > 0 && this.now() - this.deferredLoggedMs > DEFERRED_LOG_INTERVAL_MS) {
      this.deferredLoggedMs = this.now();
      this.deps.logger.warn(
        { deferred: stats.deferred, pending: journal.pendingCount() },
        'fail-open replay waiting for hydrate: partition state not marked intact (meta key missing)',
      );
    }
    return stats;
  }

  private settle(entry: FailOpenEntry, result: ReplayResult): void {
    const outcome: ReplayOutcome = result.code === 'duplicate' ? 'applied' : (result.code as ReplayOutcome);
    this.deps.journal.ack(entry.id, outcome);
    this.deps.policy.markReplayed(entry.idem);
    const fields = {
      authorization_id: entry.id,
      idempotency_key: entry.idem,
      shopper_id: entry.shopper,
      amount_cents: entry.amount,
      replay_outcome: result.code,
      redis_authorization_id: result.storedAuthorizationId,
      trip_id: result.tripId,
    };
    if (result.code === 'overridden') {
      // Our own late call was declined by Redis after the processor was told
      // "approved": the approval stands and is counted; Redis's reason is flagged.
      this.deps.logger.warn(fields, 'fail-open replay: Redis declined late, the approval given stands');
    } else if (result.code === 'already_decided' || result.code === 'conflict') {
      // For reconciliation: the processor was told "approved" by fail-open,
      // Redis had its own decision for the key, and Redis's decision was kept.
      this.deps.logger.warn(fields, 'fail-open replay: Redis had already decided this key');
    } else {
      this.deps.logger.info(fields, 'fail-open approval replayed');
    }
  }

  private replayOne(e: FailOpenEntry): Promise<ReplayResult> {
    if (e.home !== undefined) {
      if (this.deps.sendHome === undefined)
        throw new Error(`home region ${e.home} is not linked (REGION_PEERS)`);
      return this.deps.sendHome(e);
    }
    const nowMs = this.now();
    return replayEntry(this.deps, e, nowMs, nowMs - e.at < REPLAY_DEFER_MAX_MS);
  }
}

/** One call of lua/replayFailOpen-4.lua for a journal entry (src/redis/commands.ts). */
export const replayEntry = replayFailOpen;
