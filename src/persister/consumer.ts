// The persister loop: drains the partition streams it holds leases on into
// Postgres (docs/persister.md).
//
//   read  — per held partition, in this order of preference:
//           1. entries other (crashed) consumers left pending, once idle past
//              persisterClaimIdleMs (XAUTOCLAIM); the partition reads nothing
//              newer until they are taken over, so its order holds;
//           2. this consumer's own pending entries (XREADGROUP .. 0): retries;
//           3. new entries (XREADGROUP .. >), blocking up to persisterBlockMs.
//           COUNT per stream is bounded so one batch stays near
//           persisterBatchEventsMax events (at most + one per partition).
//           A batch is read in several calls of at most persisterReadEntriesMax
//           entries each: Redis runs one command at a time, and one XREADGROUP
//           of 10,000 entries held every swipe on that Redis for 20-70 ms.
//   write — one Postgres transaction per batch (src/persister/apply.ts); when
//           an event cannot be applied, the batch is redone one event per
//           SAVEPOINT so only that event fails.
//   ack   — XACK only after COMMIT. A failed event stays pending; after
//           persisterDeliveriesMax deliveries it is dead-lettered, then acked.
//   trim  — XTRIM MINID <lowest entry not yet acked>, never MAXLEN.
//
// Postgres or Redis unavailable: the batch is kept in memory and retried
// with capped backoff (not re-read: delivery counts only grow on real
// retries), so an outage never dead-letters good events.
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import type { Orm } from '../db/orm.js';
import { knexOf } from '../db/orm.js';
import type { Metrics } from '../observability/metrics.js';
import type { RedisClient } from '../redis/client.js';
import { type BatchCall, runBatch, runBatchOrThrow } from '../redis/batch.js';
import { Keys } from '../redis/keys.js';
import { KnownAccounts } from '../ledger/postings.js';
import { applyEvents, isEventError } from './apply.js';
import { type DeadLetterInput, deadLetter } from './deadLetters.js';
import { parseEntry, type RawEntry, type WalEvent } from './events.js';
import { LeaseManager } from './leases.js';
import { CONSUMER_GROUP, minUnacked, type PartitionState, WalReader } from './walReader.js';

export { CONSUMER_GROUP, minUnacked, nextStreamId, streamsOf } from './walReader.js';

export interface PersisterDeps {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly orm: Orm;
  /** Connection for blocking stream reads (nothing else runs on it). */
  readonly streamClient: RedisClient;
  /** Connection for leases, acks, trims and gauges. */
  readonly controlClient: RedisClient;
  readonly consumer?: string;
  /** Test hook: called at named points of a batch (e.g. to crash between commit and ack). */
  readonly hook?: (
    point: 'beforeCommit' | 'afterCommit' | 'afterAck',
    batchSize: number,
  ) => Promise<void> | void;
}

interface Batch {
  readonly entries: RawEntry[];
}

const BACKOFF_MS_MIN = 100;
const BACKOFF_MS_MAX = 5_000;
const TRIM_INTERVAL_MS = 200;
const LAG_INTERVAL_MS = 1_000;
const DEAD_LETTER_STREAM_MAXLEN = 100_000;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class Persister {
  readonly consumer: string;
  readonly keys: Keys;
  readonly leases: LeaseManager;
  private readonly parts = new Map<number, PartitionState>();
  private readonly reader: WalReader;
  private stopping = false;
  private running: Promise<void> | undefined;
  private lastLagMs = 0;
  /** Partitions with acks not yet followed by a trim (trims are spaced TRIM_INTERVAL_MS apart). */
  private readonly trimDue = new Set<number>();
  /** Events committed since start (tests and the benchmark read it). */
  committedEvents = 0;
  batches = 0;

  constructor(private readonly d: PersisterDeps) {
    const c = d.config;
    this.keys = new Keys(c.redisPrefix, c.partitions);
    this.consumer = d.consumer ?? `${hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    this.leases = new LeaseManager({
      client: d.controlClient,
      keys: this.keys,
      consumer: this.consumer,
      leaseMs: c.persisterLeaseMs,
      logger: d.logger,
    });
    this.reader = new WalReader({
      config: c,
      logger: d.logger,
      keys: this.keys,
      consumer: this.consumer,
      streamClient: d.streamClient,
      controlClient: d.controlClient,
      parts: this.parts,
    });
  }

  /** Takes leases and runs the loop in the background. */
  async start(): Promise<void> {
    await this.leases.start();
    this.running = this.loop();
  }

  /** Finishes the current batch (bounded by shutdownGraceMs), releases leases, resolves. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.running !== undefined) {
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<void>((r) => {
        timer = setTimeout(r, this.d.config.shutdownGraceMs + this.d.config.persisterBlockMs);
      });
      await Promise.race([this.running, grace]);
      clearTimeout(timer);
    }
    await this.leases.stop();
    for (const p of this.parts.keys()) this.d.metrics.walPending.remove({ partition: String(p) });
  }

  private async loop(): Promise<void> {
    let backoff = BACKOFF_MS_MIN;
    // A batch read while the previous one was being written (see prefetch()).
    let prefetched: Promise<Batch> | undefined;
    while (!this.stopping) {
      try {
        this.syncPartitions();
        const next = prefetched;
        prefetched = undefined;
        // Prefetched entries are written even when their partition was released
        // meanwhile (a second persister joined): they were delivered to this
        // consumer, and left pending they would hold up the new owner's
        // recovery until they idle past PERSISTER_CLAIM_IDLE_MS. Writing them
        // late is safe: the appliers are idempotent and order-insensitive.
        const batch = next !== undefined ? await next : await this.read();
        if (batch.entries.length > 0) {
          prefetched = this.prefetch();
          await this.processWithRetry(batch);
        }
        await this.trim([...this.trimDue]);
        await this.maybeUpdateLag();
        backoff = BACKOFF_MS_MIN;
      } catch (err) {
        // A prefetched batch that is dropped stays pending for this consumer:
        // the periodic own-pending check (claimAbandoned) brings it back.
        prefetched = undefined;
        this.d.logger.warn({ err: errText(err) }, 'persister read failed; backing off');
        await sleep(backoff);
        backoff = Math.min(BACKOFF_MS_MAX, backoff * 2);
      }
    }
  }

  /**
   * In steady state (no partition recovering or with entries of its own
   * pending), reads the next new entries while the current batch is written,
   * so Redis reads overlap Postgres commits. Only '>' reads, never blocking:
   * an empty answer just means the next loop turn reads (and blocks) as usual.
   * Per-partition order holds: these entries come after the batch being
   * written and are written only once it has committed.
   */
  private prefetch(): Promise<Batch> | undefined {
    // Only partitions still leased right now (the lease tick may have released some since the loop turn began).
    const held = [...this.parts.keys()].filter((p) => this.leases.holds(p));
    if (held.length === 0 || this.stopping) return undefined;
    if (held.some((p) => this.parts.get(p)?.recovering || this.parts.get(p)?.ownPending)) return undefined;
    const perStream = Math.max(1, Math.ceil(this.d.config.persisterBatchEventsMax / held.length));
    const read = this.reader.readGroup(held, '>', perStream, undefined).then((entries) => ({ entries }));
    read.catch(() => undefined); // an unobserved failure must not crash the process; the loop sees it
    return read;
  }

  /** Mirrors the lease set: new partitions start in recovery (claim before read). */
  private syncPartitions(): void {
    const owned = new Set(this.leases.owned());
    for (const p of [...this.parts.keys()]) {
      if (!owned.has(p)) {
        this.parts.delete(p);
        this.d.metrics.walPending.remove({ partition: String(p) });
      }
    }
    for (const p of owned) {
      if (!this.parts.has(p)) {
        this.parts.set(p, { recovering: true, ownPending: true, lastClaimCheckMs: 0, lastTrimMs: 0 });
      }
    }
  }

  // --- read ------------------------------------------------------------------

  private async read(): Promise<Batch> {
    const held = [...this.parts.keys()];
    if (held.length === 0) {
      await sleep(Math.min(this.d.config.persisterBlockMs, 200));
      return { entries: [] };
    }
    await this.reader.ensureGroups(held);
    const budget = this.d.config.persisterBatchEventsMax;
    const perStream = Math.max(1, Math.ceil(budget / held.length));
    const entries: RawEntry[] = [];

    const claimed = await this.reader.claimAbandoned(perStream);
    entries.push(...claimed);
    // Entries just claimed are processed now; re-reading them would count a second delivery.
    const claimedParts = new Set(claimed.map((e) => e.partition));
    const pendingParts = held.filter((p) => this.parts.get(p)?.ownPending && !claimedParts.has(p));
    if (pendingParts.length > 0)
      entries.push(...(await this.reader.readGroup(pendingParts, '0', perStream, undefined)));
    const fresh = held.filter((p) => {
      const s = this.parts.get(p);
      return s !== undefined && !s.recovering && !s.ownPending;
    });
    if (fresh.length > 0) {
      const block = entries.length === 0 ? this.d.config.persisterBlockMs : undefined;
      const first = await this.reader.readGroup(fresh, '>', perStream, block);
      entries.push(...first);
      // Top up the busy streams when the others were quiet.
      const left = budget - entries.length;
      if (left > 0 && first.length > 0) {
        const counts = new Map<number, number>();
        for (const e of first) counts.set(e.partition, (counts.get(e.partition) ?? 0) + 1);
        const busy = [...counts].filter(([, n]) => n >= perStream).map(([p]) => p);
        const more = busy.length > 0 ? Math.floor(left / busy.length) : 0;
        if (more > 0) entries.push(...(await this.reader.readGroup(busy, '>', more, undefined)));
      }
    }
    return { entries };
  }

  /** Card-holds accounts committed to Postgres: not upserted again (src/ledger/postings.ts). */
  private readonly knownAccounts = new KnownAccounts();

  // --- write -------------------------------------------------------------------

  private async processWithRetry(batch: Batch): Promise<void> {
    let backoff = BACKOFF_MS_MIN;
    for (;;) {
      try {
        await this.process(batch);
        return;
      } catch (err) {
        if (this.stopping) {
          this.d.logger.warn(
            { err: errText(err), events: batch.entries.length },
            'stopping with an unwritten batch; it stays pending',
          );
          return;
        }
        this.d.logger.warn({ err: errText(err), events: batch.entries.length }, 'batch failed; retrying');
        // The lag gauge keeps moving while Postgres is away: that is when it matters.
        await this.maybeUpdateLag().catch(() => undefined);
        await sleep(backoff);
        backoff = Math.min(BACKOFF_MS_MAX, backoff * 2);
      }
    }
  }

  private async process(batch: Batch): Promise<void> {
    const { metrics, hook } = this.d;
    const started = process.hrtime.bigint();
    const good: WalEvent[] = [];
    const failed: { raw: RawEntry; error: string }[] = [];
    // Within one batch an entry could appear twice: keep the first.
    const rawOf = new Map<string, RawEntry>();
    for (const raw of batch.entries) {
      const k = `${raw.partition}/${raw.streamId}`;
      if (rawOf.has(k)) continue;
      rawOf.set(k, raw);
      const r = parseEntry(raw);
      if (r.ok) good.push(r.event);
      else failed.push({ raw, error: r.error });
    }
    good.sort((a, b) => a.partition - b.partition || (a.pos < b.pos ? -1 : a.pos > b.pos ? 1 : 0));

    // Partitions are split over PERSISTER_WRITERS concurrent transactions (each partition in exactly one, in
    // stream order): a partition's rows never meet another's, so they cannot conflict or deadlock.
    const writers = this.d.config.persisterWriters;
    const groups: WalEvent[][] = Array.from({ length: writers }, () => []);
    for (const e of good) groups[e.partition % writers]?.push(e);
    const settled = await Promise.allSettled(
      groups.filter((g) => g.length > 0).map((g) => this.write(g, rawOf, failed)),
    );
    const applied: Record<string, number> = {};
    const committed: WalEvent[] = [];
    for (const s of settled) if (s.status === 'rejected') throw s.reason; // retried whole: commits made are no-ops then
    for (const s of settled) {
      const r = (s as PromiseFulfilledResult<{ committed: WalEvent[]; applied: Record<string, number> }>)
        .value;
      committed.push(...r.committed);
      for (const [t, n] of Object.entries(r.applied)) applied[t] = (applied[t] ?? 0) + n;
    }
    await hook?.('afterCommit', committed.length);

    const toAck = new Map<number, string[]>();
    const addAck = (p: number, id: string) => {
      const l = toAck.get(p);
      if (l === undefined) toAck.set(p, [id]);
      else l.push(id);
    };
    for (const e of committed) addAck(e.partition, e.streamId);
    for (const dl of await this.handleFailures(failed)) addAck(dl.partition, dl.streamId);
    await this.ack(toAck);
    await hook?.('afterAck', committed.length);

    for (const [type, n] of Object.entries(applied)) metrics.persisterEvents.inc({ type }, n);
    metrics.persisterBatchDuration.observe(Number(process.hrtime.bigint() - started) / 1e9);
    this.committedEvents += committed.length;
    this.batches += 1;
    await this.trim([...toAck.keys()]);
  }

  /**
   * One transaction for these events; when one of them cannot be applied, redo
   * them one SAVEPOINT each so only the bad ones fail (pushed to `failed`).
   */
  private async write(
    events: readonly WalEvent[],
    rawOf: ReadonlyMap<string, RawEntry>,
    failed: { raw: RawEntry; error: string }[],
  ): Promise<{ committed: WalEvent[]; applied: Record<string, number> }> {
    const { hook } = this.d;
    const knex = knexOf(this.d.orm);
    try {
      const r = await knex.transaction(async (trx) => {
        const res = await applyEvents(trx, events, this.knownAccounts);
        await hook?.('beforeCommit', events.length);
        return res;
      });
      this.knownAccounts.addAll(r.accounts);
      return { committed: [...events], applied: r.applied };
    } catch (err) {
      if (!isEventError(err)) throw err;
    }
    const ok: WalEvent[] = [];
    const accounts: string[] = [];
    const applied = await knex.transaction(async (trx) => {
      const sums: Record<string, number> = {};
      for (const ev of events) {
        try {
          const r = await trx.transaction(async (sp) => applyEvents(sp, [ev], this.knownAccounts));
          for (const [t, n] of Object.entries(r.applied)) sums[t] = (sums[t] ?? 0) + n;
          accounts.push(...r.accounts);
          ok.push(ev);
        } catch (e) {
          if (!isEventError(e)) throw e;
          const raw = rawOf.get(`${ev.partition}/${ev.streamId}`);
          if (raw !== undefined) failed.push({ raw, error: errText(e) });
        }
      }
      await hook?.('beforeCommit', ok.length);
      return sums;
    });
    this.knownAccounts.addAll(accounts);
    return { committed: ok, applied };
  }

  /** Failed entries: dead-letter those delivered persisterDeliveriesMax times; the rest stay pending. */
  private async handleFailures(failed: readonly { raw: RawEntry; error: string }[]): Promise<RawEntry[]> {
    if (failed.length === 0) return [];
    const max = this.d.config.persisterDeliveriesMax;
    const dead: DeadLetterInput[] = [];
    for (const { raw, error } of failed) {
      const info = (await this.d.controlClient.call('XPENDING', [
        this.keys.wal(raw.partition),
        CONSUMER_GROUP,
        raw.streamId,
        raw.streamId,
        1,
      ])) as [string, string, number, number][];
      const deliveries = Number(info[0]?.[3] ?? 0);
      this.d.logger.warn(
        { partition: raw.partition, streamId: raw.streamId, eventId: raw.eventId, deliveries, error },
        'event failed',
      );
      if (deliveries >= max) dead.push({ raw, error, deliveries });
      else {
        const s = this.parts.get(raw.partition);
        if (s !== undefined) s.ownPending = true;
      }
    }
    if (dead.length === 0) return [];
    await deadLetter(
      {
        orm: this.d.orm,
        client: this.d.controlClient,
        keys: this.keys,
        metrics: this.d.metrics,
        logger: this.d.logger,
        streamMaxLen: DEAD_LETTER_STREAM_MAXLEN,
      },
      dead,
    );
    return dead.map((d) => d.raw);
  }

  private async ack(toAck: Map<number, string[]>): Promise<void> {
    if (toAck.size === 0) return;
    await runBatchOrThrow(
      this.d.controlClient,
      [...toAck].map(([p, ids]): BatchCall => ['XACK', [this.keys.wal(p), CONSUMER_GROUP, ...ids]]),
    );
  }

  /** XTRIM MINID below the lowest entry that is delivered-but-unacked (or not yet delivered). */
  private async trim(partitions: readonly number[]): Promise<void> {
    const now = Date.now();
    for (const p of partitions) this.trimDue.add(p);
    const due = partitions.filter((p) => {
      const s = this.parts.get(p);
      return s !== undefined && now - s.lastTrimMs >= TRIM_INTERVAL_MS;
    });
    if (due.length === 0) return;
    for (const p of due) this.trimDue.delete(p);
    // Order matters: last-delivered first, then pending. An entry delivered in between is newer than it.
    // (On Cluster the two go in parallel; XINFO is still sent first on the same node connection.)
    const res = await runBatch(
      this.d.controlClient,
      due.flatMap((p): BatchCall[] => [
        ['XINFO', ['GROUPS', this.keys.wal(p)]],
        ['XPENDING', [this.keys.wal(p), CONSUMER_GROUP]],
      ]),
    );
    const trims: BatchCall[] = [];
    due.forEach((p, i) => {
      const [e1, groups] = res[2 * i] ?? [];
      const [e2, pending] = res[2 * i + 1] ?? [];
      if (e1 || e2) return;
      const minId = minUnacked(groups as unknown[][], pending as [number, string | null]);
      if (minId !== null) trims.push(['XTRIM', [this.keys.wal(p), 'MINID', minId]]);
      const s = this.parts.get(p);
      if (s !== undefined) s.lastTrimMs = now;
    });
    await runBatch(this.d.controlClient, trims);
  }

  private async maybeUpdateLag(): Promise<void> {
    const now = Date.now();
    if (now - this.lastLagMs < LAG_INTERVAL_MS) return;
    this.lastLagMs = now;
    const held = [...this.parts.keys()];
    if (held.length === 0) return;
    const res = await runBatch(
      this.d.controlClient,
      held.map((p): BatchCall => ['XLEN', [this.keys.wal(p)]]),
    );
    held.forEach((p, i) => {
      const [err, n] = res[i] ?? [];
      if (!err) this.d.metrics.walPending.set({ partition: String(p) }, Number(n));
    });
  }
}
