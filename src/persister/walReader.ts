// Reading the partition streams for the persister (src/persister/consumer.ts):
// consumer-group reads bounded per call, the Cluster's per-stream reads, and
// taking over entries an idle (crashed) consumer left pending. The batch
// policy (what to read first, prefetching) stays in the consumer.
import { Cluster } from 'ioredis';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import type { RedisClient } from '../redis/client.js';
import type { Keys } from '../redis/keys.js';
import { type RawEntry, rawEntry } from './events.js';

export const CONSUMER_GROUP = 'persister';

export interface PartitionState {
  /** Other consumers may still have pending entries here: claim them before reading new ones. */
  recovering: boolean;
  /** This consumer has pending entries here (a failed event, or entries just claimed). */
  ownPending: boolean;
  lastClaimCheckMs: number;
  lastTrimMs: number;
}

const RECOVERY_CHECK_MS_MAX = 1_000;
/** Redis Cluster has no multi-slot blocking read: pause this long when every stream was empty. */
const CLUSTER_POLL_PAUSE_MS = 50;
type XEntries = [id: string, fields: string[] | null][];
/** RESP2 shape: [[key, entries], ...]; RESP3 (ioredis 6 `call`): the map flattened, [key, entries, key, entries]. */
type XReadReply = [key: string, entries: XEntries][] | (string | XEntries)[] | null;

export function streamsOf(reply: XReadReply): [string, XEntries][] {
  if (reply === null || reply.length === 0) return [];
  if (typeof reply[0] !== 'string') return reply as [string, XEntries][];
  const out: [string, XEntries][] = [];
  for (let i = 0; i + 1 < reply.length; i += 2)
    out.push([reply[i] as string, (reply[i + 1] ?? []) as XEntries]);
  return out;
}

/** "1700000000000-7" → "1700000000000-8": the smallest id after it. */
export function nextStreamId(id: string): string {
  const dash = id.indexOf('-');
  return `${id.slice(0, dash)}-${BigInt(id.slice(dash + 1)) + 1n}`;
}

function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt) as [bigint, bigint];
  const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint];
  return am === bm ? (as === bs ? 0 : as < bs ? -1 : 1) : am < bm ? -1 : 1;
}

export interface WalReaderDeps {
  readonly config: Config;
  readonly logger: Logger;
  readonly keys: Keys;
  readonly consumer: string;
  /** Connection for blocking stream reads (nothing else runs on it). */
  readonly streamClient: RedisClient;
  /** Connection for XGROUP, XPENDING and XAUTOCLAIM. */
  readonly controlClient: RedisClient;
  /** The consumer's partitions (shared: the reader updates recovering/ownPending). */
  readonly parts: Map<number, PartitionState>;
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class WalReader {
  private readonly walToPartition = new Map<string, number>();
  private readonly groupsReady = new Set<number>();

  constructor(private readonly d: WalReaderDeps) {
    for (let p = 0; p < d.config.partitions; p++) this.walToPartition.set(d.keys.wal(p), p);
  }

  /** Creates the consumer group where missing (first start, or Redis lost the stream). */
  async ensureGroups(partitions: readonly number[]): Promise<void> {
    const missing = partitions.filter((p) => !this.groupsReady.has(p));
    for (const p of missing) {
      try {
        await this.d.controlClient.call('XGROUP', [
          'CREATE',
          this.d.keys.wal(p),
          CONSUMER_GROUP,
          '0',
          'MKSTREAM',
        ]);
      } catch (err) {
        if (!errText(err).includes('BUSYGROUP')) throw err;
      }
      this.groupsReady.add(p);
    }
  }

  onNoGroup(err: unknown): void {
    if (errText(err).includes('NOGROUP')) {
      // The stream or group vanished (Redis flushed or restarted empty): recreate on the next read.
      this.groupsReady.clear();
      for (const s of this.d.parts.values()) {
        s.recovering = true;
        s.ownPending = true;
      }
    }
  }

  async readGroup(
    partitions: readonly number[],
    id: '0' | '>',
    count: number,
    blockMs: number | undefined,
  ): Promise<RawEntry[]> {
    let replies: XReadReply[];
    try {
      replies =
        this.d.streamClient instanceof Cluster
          ? await this.readEachPartition(partitions, id, count, blockMs)
          : await this.readStreams(partitions, id, count, blockMs);
    } catch (err) {
      this.onNoGroup(err);
      throw err;
    }
    const out: RawEntry[] = [];
    for (const [key, list] of replies.flatMap((reply) => streamsOf(reply))) {
      const p = this.walToPartition.get(key);
      if (p === undefined) continue;
      for (const [streamId, fields] of list) out.push(rawEntry(p, streamId, fields));
    }
    if (id === '0') {
      // A stream whose own-pending read came back empty has nothing left to retry.
      for (const p of partitions) {
        const s = this.d.parts.get(p);
        if (s !== undefined && !out.some((e) => e.partition === p)) s.ownPending = false;
      }
    }
    return out;
  }

  /**
   * XREADGROUP over several streams (standalone Redis, where all streams share a node), `count`
   * per stream, in calls of at most persisterReadEntriesMax entries each, one after another:
   * between two calls Redis serves the swipes. Blocks only when these found nothing, in one
   * call over all streams whose COUNT keeps it within the bound (at least one per stream).
   */
  private async readStreams(
    partitions: readonly number[],
    id: '0' | '>',
    count: number,
    blockMs: number | undefined,
  ): Promise<XReadReply[]> {
    const cap = this.d.config.persisterReadEntriesMax;
    const perCall = Math.min(count, cap);
    const groupSize = Math.max(1, Math.floor(cap / perCall));
    const replies: XReadReply[] = [];
    let found = 0;
    // New entries ('>') of a stream that filled its call and may have more. Own pending ones
    // ('0') are not read again: the same read would return the same entries.
    const more: [number, number][] = [];
    for (let i = 0; i < partitions.length; i += groupSize) {
      const reply = await this.xreadgroup(partitions.slice(i, i + groupSize), id, perCall, undefined);
      replies.push(reply);
      for (const [key, list] of streamsOf(reply)) {
        found += list.length;
        const p = this.walToPartition.get(key);
        if (id === '>' && p !== undefined && list.length === perCall && count > perCall)
          more.push([p, count - perCall]);
      }
    }
    for (let next = more.shift(); next !== undefined; next = more.shift()) {
      const [p, left] = next;
      const n = Math.min(left, cap);
      const reply = await this.xreadgroup([p], '>', n, undefined);
      replies.push(reply);
      const got = streamsOf(reply).reduce((sum, [, list]) => sum + list.length, 0);
      found += got;
      if (got === n && left > n) more.push([p, left - n]);
    }
    if (found === 0 && blockMs !== undefined) {
      const each = Math.min(count, Math.max(1, Math.floor(cap / partitions.length)));
      replies.push(await this.xreadgroup(partitions, id, each, blockMs));
    }
    return replies;
  }

  private xreadgroup(
    partitions: readonly number[],
    id: '0' | '>',
    count: number,
    blockMs: number | undefined,
  ): Promise<XReadReply> {
    const args: (string | number)[] = ['GROUP', CONSUMER_GROUP, this.d.consumer, 'COUNT', count];
    if (blockMs !== undefined) args.push('BLOCK', blockMs);
    args.push('STREAMS', ...partitions.map((p) => this.d.keys.wal(p)), ...partitions.map(() => id));
    return this.d.streamClient.call('XREADGROUP', args) as Promise<XReadReply>;
  }

  /**
   * Redis Cluster: each partition's stream lives in its own slot, so a
   * multi-stream XREADGROUP would be cross-slot. Read each stream without
   * BLOCK (ioredis routes each to its node) and, when all are empty, wait a
   * short bounded pause instead of blocking.
   */
  private async readEachPartition(
    partitions: readonly number[],
    id: '0' | '>',
    count: number,
    blockMs: number | undefined,
  ): Promise<XReadReply[]> {
    // Each call goes to its own stream (and node); each stays within the read bound.
    const perStream = Math.min(
      this.d.config.persisterReadEntriesMax,
      Math.max(1, Math.ceil(count / Math.max(1, partitions.length))),
    );
    const replies = await Promise.all(
      partitions.map(
        (p) =>
          this.d.streamClient.call('XREADGROUP', [
            'GROUP',
            CONSUMER_GROUP,
            this.d.consumer,
            'COUNT',
            perStream,
            'STREAMS',
            this.d.keys.wal(p),
            id,
          ]) as Promise<XReadReply>,
      ),
    );
    if (blockMs !== undefined && replies.every((r) => streamsOf(r).every(([, list]) => list.length === 0))) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(blockMs, CLUSTER_POLL_PAUSE_MS)));
    }
    return replies;
  }

  /**
   * For partitions in recovery (and every claim-idle period for all held ones):
   * takes over entries other consumers left pending once idle past
   * persisterClaimIdleMs. Returns the claimed entries (now this consumer's).
   */
  async claimAbandoned(count: number): Promise<RawEntry[]> {
    const c = this.d.config;
    const now = Date.now();
    // A recovering partition waits for other consumers' pending entries (acked by a live
    // previous owner within a batch or so, claimed from a dead one after the idle bound): look often.
    const checkEveryMs = Math.min(
      RECOVERY_CHECK_MS_MAX,
      Math.max(100, Math.floor(c.persisterClaimIdleMs / 4)),
    );
    const out: RawEntry[] = [];
    for (const [p, s] of this.d.parts) {
      if (!s.recovering && now - s.lastClaimCheckMs < c.persisterClaimIdleMs) continue;
      if (s.recovering && now - s.lastClaimCheckMs < checkEveryMs) continue;
      s.lastClaimCheckMs = now;
      const wal = this.d.keys.wal(p);
      let summary: [number, string | null, string | null, [string, string][] | null];
      try {
        summary = (await this.d.controlClient.call('XPENDING', [wal, CONSUMER_GROUP])) as typeof summary;
      } catch (err) {
        this.onNoGroup(err);
        throw err;
      }
      const others = (summary[3] ?? []).filter(([name]) => name !== this.d.consumer);
      const mine = (summary[3] ?? []).some(([name]) => name === this.d.consumer);
      if (mine) s.ownPending = true;
      if (others.length === 0) {
        s.recovering = false;
        continue;
      }
      s.recovering = true;
      const reply = (await this.d.controlClient.call('XAUTOCLAIM', [
        wal,
        CONSUMER_GROUP,
        this.d.consumer,
        c.persisterClaimIdleMs,
        '0-0',
        'COUNT',
        Math.min(count, c.persisterReadEntriesMax),
      ])) as [string, XEntries, string[]?];
      const claimed = reply[1] ?? [];
      if (claimed.length > 0) {
        this.d.logger.info({ partition: p, claimed: claimed.length }, 'claimed entries of an idle consumer');
        for (const [streamId, fields] of claimed) out.push(rawEntry(p, streamId, fields));
      }
    }
    return out;
  }
}

/**
 * The MINID to trim to: the oldest pending entry, or (nothing pending) the
 * entry right after the last delivered one. Null when the group is unknown.
 */
export function minUnacked(groups: unknown[][], pending: [number, string | null]): string | null {
  let lastDelivered: string | null = null;
  for (const g of groups ?? []) {
    const fields = new Map<string, unknown>();
    for (let i = 0; i + 1 < g.length; i += 2) fields.set(String(g[i]), g[i + 1]);
    if (fields.get('name') === CONSUMER_GROUP) lastDelivered = String(fields.get('last-delivered-id'));
  }
  if (lastDelivered === null || lastDelivered === '0-0') return null;
  const oldestPending = pending?.[0] > 0 ? pending[1] : null;
  if (oldestPending !== null && compareIds(oldestPending, lastDelivered) <= 0) return oldestPending;
  return nextStreamId(lastDelivered);
}
