// Key builder. Every key of one shopper carries the hash tag {p<partition>}, so
// each script touches exactly one Cluster slot. Layout: docs/redis-layout.md.
import { sha256Hex } from '../auth/sha256.js';
import { crc32 } from 'node:zlib';

export function partitionOf(shopperId: string, partitions: number): number {
  return crc32(shopperId) % partitions;
}

export class Keys {
  constructor(
    readonly prefix: string,
    readonly partitions: number,
  ) {}

  /** "sa:{p7}:" — every key of partition p starts with this. Scripts build sub-keys from it. */
  base(partition: number): string {
    return `${this.prefix}:{p${partition}}:`;
  }

  partition(shopperId: string): number {
    return partitionOf(shopperId, this.partitions);
  }

  shopper(p: number, shopperId: string): string {
    return `${this.base(p)}shopper:${shopperId}`;
  }

  /**
   * A trip is (shopper_id, trip_id) (CONTRACT §3). Ids match ID_PATTERN (no ':'), so the two
   * parts cannot run into each other. Sub-keys append `:items`, `:picks`, `:swipes`, `:auths`.
   */
  trip(p: number, shopperId: string, tripId: string): string {
    return `${this.base(p)}trip:${shopperId}:${tripId}`;
  }

  idem(p: number, idempotencyKey: string): string {
    return `${this.base(p)}idem:${idempotencyKey}`;
  }

  sig(p: number, signatureHex: string): string {
    return `${this.base(p)}sig:${signatureHex}`;
  }

  /** Both ids may contain ':': hash the pair so (X, r:1) and (X:r, 1) cannot collide. */
  reversal(p: number, transactionId: string, reversalId: string): string {
    const pair = sha256Hex(JSON.stringify([transactionId, reversalId]));
    return `${this.base(p)}rev:${pair.slice(0, 40)}`;
  }

  /** One clearing per transaction (lua/clearAuthorization-3.lua). */
  clearing(p: number, transactionId: string): string {
    return `${this.base(p)}clr:${transactionId}`;
  }

  auth(p: number, authorizationId: string): string {
    return `${this.base(p)}auth:${authorizationId}`;
  }

  /** Marker: this authorization's hold was released by expiry or reconciliation (lua/expireHold-3.lua). */
  holdExpiry(p: number, authorizationId: string): string {
    return `${this.base(p)}hx:${authorizationId}`;
  }

  /**
   * A processor card lives in the partition of its own id, not its shopper's: a swipe names the
   * card before the shopper is known (docs/processors.md, "Card registry").
   */
  cardPartition(processor: string, cardId: string): number {
    return partitionOf(`${processor}:${cardId}`, this.partitions);
  }

  card(p: number, processor: string, cardId: string): string {
    return `${this.base(p)}card:${processor}:${cardId}`;
  }

  meta(p: number): string {
    return `${this.base(p)}meta`;
  }

  wal(p: number): string {
    return `${this.base(p)}wal`;
  }

  allWals(): string[] {
    const out: string[] = [];
    for (let p = 0; p < this.partitions; p++) out.push(this.wal(p));
    return out;
  }
}
