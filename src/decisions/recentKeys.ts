// Idempotency keys are stored in the partition of the shopper, so one script
// stays in one Cluster slot. A transaction id (or Idempotency-Key) reused for
// a *different* shopper lands in another partition, where Redis cannot see
// the first use. This bounded, pod-local map catches that case on the pod
// that decided the first use; across pods, Postgres's unique transaction id
// and reconciliation are the backstop (docs/design-decisions.md).

export interface RecentDecision {
  readonly shopperId: string;
  readonly authorizationId: string;
}

/** One compact string per key ("<atMs> <shopperId> <authorizationId>"): about 200 bytes an entry. */
export class RecentKeys {
  private readonly entries = new Map<string, string>();

  constructor(
    private readonly entriesMax: number,
    private readonly ttlMs: number,
  ) {
    if (!(entriesMax > 0 && ttlMs > 0)) throw new Error('RecentKeys: limits must be positive');
  }

  /** Only keys chosen by the caller (transaction id, header) can collide across shoppers. */
  static tracks(idempotencyKey: string): boolean {
    return !idempotencyKey.startsWith('d:');
  }

  /** The earlier decision when this key was decided for another shopper. */
  conflict(idempotencyKey: string, shopperId: string, nowMs: number): RecentDecision | undefined {
    const hit = this.entries.get(idempotencyKey);
    if (hit === undefined) return undefined;
    const [atMs, earlierShopper, authorizationId] = hit.split(' ') as [string, string, string];
    if (nowMs - Number(atMs) > this.ttlMs) {
      this.entries.delete(idempotencyKey);
      return undefined;
    }
    return earlierShopper === shopperId ? undefined : { shopperId: earlierShopper, authorizationId };
  }

  remember(idempotencyKey: string, decision: RecentDecision, nowMs: number): void {
    if (this.entries.has(idempotencyKey)) return;
    if (this.entries.size >= this.entriesMax) {
      // Map iterates in insertion order: the first key is the oldest.
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    // Shopper and authorization ids never contain spaces (validated / generated).
    this.entries.set(idempotencyKey, `${nowMs} ${decision.shopperId} ${decision.authorizationId}`);
  }
}
