// Partition leases: each partition has at most one active persister at a time
// (`<base>lease:persister`, SET NX PX, renewed by a compare-and-PEXPIRE
// script), so events of one partition are applied in stream order. Live
// persisters announce themselves in `<prefix>:persisters` (a zset of
// heartbeats); each one takes at most its fair share ceil(P / live) and lets go
// of the rest, so a second process takes over half the partitions within a
// few renew periods and all of them when the other dies (its leases expire).
//
// Leases are about order and efficiency, not correctness: a paused process can
// still commit after losing its lease, and the idempotent appliers make that
// harmless (docs/persister.md).
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { RedisClient } from '../redis/client.js';
import type { Keys } from '../redis/keys.js';
import { ScriptRunner } from '../redis/scripts.js';
import { releaseLease, renewLease } from '../redis/commands.js';

export interface LeaseOptions {
  readonly client: RedisClient;
  readonly keys: Keys;
  readonly consumer: string;
  readonly leaseMs: number;
  readonly logger: Logger;
}

export function leaseKey(keys: Keys, partition: number): string {
  return `${keys.base(partition)}lease:persister`;
}

/**
 * Waits until `processes` distinct persisters hold all partitions, none more
 * than its share ceil(P / processes) (benchmarks: time a steady state, not the
 * hand-over).
 */
export async function waitForLeaseSplit(
  client: Pick<Redis, 'mget'>,
  keys: Keys,
  processes: number,
  timeoutMs: number,
): Promise<void> {
  const partitions = keys.partitions;
  const share = Math.ceil(partitions / processes); // what each takes at most
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const owners = await client.mget(...Array.from({ length: partitions }, (_, p) => leaseKey(keys, p)));
    const counts = new Map<string, number>();
    for (const o of owners) if (o !== null) counts.set(o, (counts.get(o) ?? 0) + 1);
    const held = [...counts.values()];
    if (
      held.length === processes &&
      held.every((c) => c <= share) &&
      held.reduce((a, b) => a + b, 0) === partitions
    )
      return;
    if (Date.now() > deadline)
      throw new Error(`leases not split over ${processes} persisters: ${JSON.stringify([...counts])}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function membersKey(keys: Keys): string {
  return `${keys.prefix}:persisters`;
}

export class LeaseManager {
  private readonly held = new Set<number>();
  private readonly scripts: ScriptRunner;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly o: LeaseOptions) {
    this.scripts = new ScriptRunner(o.client, undefined, undefined);
  }

  /** Partitions held right now (a copy). */
  owned(): number[] {
    return [...this.held].sort((a, b) => a - b);
  }

  holds(partition: number): boolean {
    return this.held.has(partition);
  }

  renewIntervalMs(): number {
    return Math.max(100, Math.floor(this.o.leaseMs / 3));
  }

  /** First tick now, then every third of the lease. */
  async start(): Promise<void> {
    await this.tick();
    this.timer = setInterval(() => {
      if (this.ticking !== undefined) return; // a slow tick is still running: skip, never pile up
      this.ticking = this.tick().finally(() => {
        this.ticking = undefined;
      });
    }, this.renewIntervalMs());
    this.timer.unref();
  }

  /** Stops renewing and releases every lease this process holds. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    await this.ticking;
    const { keys, consumer } = this.o;
    await Promise.allSettled(
      [...this.held].map((p) => releaseLease(this.scripts, leaseKey(keys, p), consumer)),
    );
    this.held.clear();
    await this.o.client.zrem(membersKey(keys), consumer).catch(() => undefined);
  }

  /** Heartbeat, renew, then acquire up to the fair share or release beyond it. */
  async tick(): Promise<void> {
    if (this.stopped) return;
    const { client, keys, consumer, leaseMs, logger } = this.o;
    try {
      const now = Date.now();
      const members = membersKey(keys);
      const res = await client
        .multi()
        .zadd(members, now, consumer)
        .zremrangebyscore(members, '-inf', now - 3 * leaseMs)
        .zcard(members)
        .exec();
      const liveCount = Math.max(1, Number(res?.[2]?.[1] ?? 1));
      const share = Math.ceil(keys.partitions / liveCount);

      for (const p of [...this.held]) {
        if (!(await renewLease(this.scripts, leaseKey(keys, p), consumer, leaseMs))) {
          this.held.delete(p);
          logger.warn({ partition: p }, 'persister lease lost');
        }
      }
      // Over the share: let go of the highest partitions; another process picks them up.
      for (const p of this.owned().reverse()) {
        if (this.held.size <= share) break;
        await releaseLease(this.scripts, leaseKey(keys, p), consumer);
        this.held.delete(p);
      }
      if (this.held.size >= share) return;
      // Under the share: try free partitions, starting at a random one so processes spread out.
      const start = Math.floor(Math.random() * keys.partitions);
      for (let i = 0; i < keys.partitions && this.held.size < share; i++) {
        const p = (start + i) % keys.partitions;
        if (this.held.has(p)) continue;
        const got = await client.set(leaseKey(keys, p), consumer, 'PX', leaseMs, 'NX');
        if (got === 'OK') this.held.add(p);
      }
    } catch (err) {
      // Redis unavailable: keep what we think we hold; renewals fail and leases lapse on their own.
      logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'persister lease tick failed');
    }
  }
}
