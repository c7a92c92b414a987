// Idempotency keys are stored in the partition of the shopper, so one script
// stays in one Cluster slot. A transaction id (or Idempotency-Key) reused for
// a *different* shopper lands in another partition, where Redis cannot see
// the first use. This bounded, pod-local table catches that case on the pod
// that decided the first use; across pods, Postgres's unique transaction id
// and reconciliation are the backstop (docs/design-decisions.md).
//
// The table lives in typed arrays allocated once: no object per entry. A Map of
// strings (the first version) put ~50,000 long-lived strings in the old
// generation, replaced one per swipe: every scavenge walked the Map's new entries
// and the churn forced a mark-compact every few seconds at load (typed arrays:
// none in the same 8 s phase of `npm run bench`). Keys and shopper ids are kept as
// 64-bit hashes; the earlier authorization id as its bytes, for the answer.

export interface RecentDecision {
  readonly shopperId: string;
  readonly authorizationId: string;
}

/** Authorization ids are ASCII (auth_ + 32 hex, or a UUID form); longer ones are not remembered. */
const AUTHORIZATION_ID_BYTES_MAX = 64;
const EMPTY = -1;

// The two 32-bit halves of the last hash64() (module scratch: no array per call).
let hashHi = 0;
let hashLo = 0;

/**
 * 64-bit string hash (cyrb53's two multiplicative lanes, both kept). Two different keys
 * collide with probability ~2^-64 per pair: with 50,000 entries, a false "conflict" is
 * ~3e-15 per lookup. A shopper-id collision can only hide a conflict (as if untracked).
 */
function hash64(s: string): void {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  hashHi = h2 >>> 0;
  hashLo = h1 >>> 0;
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

/**
 * Fixed-capacity map key -> (shopper, authorization id, time). An entry lasts until its ttl
 * has passed or `entriesMax` later keys have been remembered, whichever comes first.
 */
export class RecentKeys {
  /** Chained hash table over the slots: head slot per bucket, next slot per slot. */
  private readonly buckets: Int32Array;
  private readonly next: Int32Array;
  private readonly keyHash: Uint32Array; // 2 per slot: hi, lo
  private readonly shopperHash: Uint32Array; // 2 per slot
  private readonly atMs: Float64Array;
  private readonly live: Uint8Array;
  private readonly authLength: Uint8Array;
  private readonly authBytes: Buffer;
  /** Slots are filled in a ring, so the slot reused next holds the oldest entry. */
  private cursor = 0;

  constructor(
    private readonly entriesMax: number,
    private readonly ttlMs: number,
  ) {
    if (!(Number.isInteger(entriesMax) && entriesMax > 0 && ttlMs > 0))
      throw new Error('RecentKeys: limits must be positive');
    // At most one entry per two buckets on average: chains stay a slot or two long.
    let bucketCount = 1;
    while (bucketCount < 2 * entriesMax) bucketCount *= 2;
    this.buckets = new Int32Array(bucketCount).fill(EMPTY);
    this.next = new Int32Array(entriesMax).fill(EMPTY);
    this.keyHash = new Uint32Array(2 * entriesMax);
    this.shopperHash = new Uint32Array(2 * entriesMax);
    this.atMs = new Float64Array(entriesMax);
    this.live = new Uint8Array(entriesMax);
    this.authLength = new Uint8Array(entriesMax);
    this.authBytes = Buffer.alloc(AUTHORIZATION_ID_BYTES_MAX * entriesMax);
  }

  /** Only keys chosen by the caller (transaction id, header) can collide across shoppers. */
  static tracks(idempotencyKey: string): boolean {
    return !idempotencyKey.startsWith('d:');
  }

  /** The earlier decision's authorization id when this key was decided for another shopper. */
  conflict(
    idempotencyKey: string,
    shopperId: string,
    nowMs: number,
  ): { authorizationId: string } | undefined {
    hash64(idempotencyKey);
    const slot = this.find(hashHi, hashLo);
    if (slot === EMPTY) return undefined;
    if (nowMs - (this.atMs[slot] as number) > this.ttlMs) {
      this.unlink(slot);
      return undefined;
    }
    hash64(shopperId);
    if (this.shopperHash[2 * slot] === hashHi && this.shopperHash[2 * slot + 1] === hashLo) return undefined;
    const at = slot * AUTHORIZATION_ID_BYTES_MAX;
    return { authorizationId: this.authBytes.toString('latin1', at, at + (this.authLength[slot] as number)) };
  }

  /** The first decision of a key is kept; later ones (same shopper: replays) change nothing. */
  remember(idempotencyKey: string, decision: RecentDecision, nowMs: number): void {
    const id = decision.authorizationId;
    if (id.length > AUTHORIZATION_ID_BYTES_MAX || !isAscii(id)) return;
    hash64(idempotencyKey);
    const hi = hashHi;
    const lo = hashLo;
    const existing = this.find(hi, lo);
    if (existing !== EMPTY) {
      if (nowMs - (this.atMs[existing] as number) <= this.ttlMs) return;
      this.unlink(existing);
    }
    const slot = this.cursor;
    this.cursor = (slot + 1) % this.entriesMax;
    if (this.live[slot] === 1) this.unlink(slot);
    this.keyHash[2 * slot] = hi;
    this.keyHash[2 * slot + 1] = lo;
    hash64(decision.shopperId);
    this.shopperHash[2 * slot] = hashHi;
    this.shopperHash[2 * slot + 1] = hashLo;
    this.atMs[slot] = nowMs;
    this.authLength[slot] = this.authBytes.write(id, slot * AUTHORIZATION_ID_BYTES_MAX, 'latin1');
    const bucket = lo & (this.buckets.length - 1);
    this.next[slot] = this.buckets[bucket] as number;
    this.buckets[bucket] = slot;
    this.live[slot] = 1;
  }

  /** Live entries (tests; a scan of every slot). */
  get size(): number {
    let n = 0;
    for (let i = 0; i < this.entriesMax; i++) n += this.live[i] as number;
    return n;
  }

  private find(hi: number, lo: number): number {
    let slot = this.buckets[lo & (this.buckets.length - 1)] as number;
    while (slot !== EMPTY) {
      if (this.keyHash[2 * slot + 1] === lo && this.keyHash[2 * slot] === hi) return slot;
      slot = this.next[slot] as number;
    }
    return EMPTY;
  }

  private unlink(slot: number): void {
    const bucket = (this.keyHash[2 * slot + 1] as number) & (this.buckets.length - 1);
    let at = this.buckets[bucket] as number;
    if (at === slot) this.buckets[bucket] = this.next[slot] as number;
    else {
      while (at !== EMPTY && this.next[at] !== slot) at = this.next[at] as number;
      if (at !== EMPTY) this.next[at] = this.next[slot] as number;
    }
    this.next[slot] = EMPTY;
    this.live[slot] = 0;
  }
}
