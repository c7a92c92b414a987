// The benchmark workload, shared by the load generator, the Redis-only driver
// and the bare limit servers: seeded trips, and a swipe mix of ~70 % approvals,
// ~20 % declines (10 % amount too high, 10 % wrong merchant) and ~10 % exact
// retries of earlier transactions.
import type { Keys } from '../src/redis/keys.js';
import { type Config, loadConfig } from '../src/config/config.js';
import { authorizeSwipeCall } from '../src/redis/commands.js';

/** Already in normalized form, so the bare script server can pass it straight to Lua. */
export const STORE = { name: 'bench store', address: '1 bench way', lat: 37.77, lng: -122.41 } as const;
export const OTHER_STORE = 'other store';
export const SECRET = 'bench-signature-secret-0123456789abcdef';
export const TOKEN = 'bench-api-token-0123456789abcdef';
/** High enough that velocity never decides (CONTRACT default is 10). */
export const MAX_SWIPES_PER_MINUTE = 100_000;
/**
 * What the bench's service runs with beyond the defaults: velocity out of the way, and the compact
 * WAL payload on (the state after a rollout has finished: docs/deploy.md).
 */
export const BENCH_SERVICE_ENV = {
  SWIPES_PER_MINUTE_MAX: String(MAX_SWIPES_PER_MINUTE),
  WAL_COMPACT_PAYLOAD: '1',
} as const;

/** Picked in full at seed time: 400 x 50.00 + 10 x 3.49 = 20,034.90; thousands of small approvals fit. */
export const ITEMS = [
  { item_id: 'bulk', quantity: 400, unit_price: '50.00' },
  { item_id: 'milk', quantity: 10, unit_price: '3.49' },
] as const;

export interface BenchShopper {
  readonly shopperId: string;
  readonly tripId: string;
}

export function benchShoppers(count: number, tag: string): BenchShopper[] {
  const out: BenchShopper[] = [];
  for (let i = 0; i < count; i++) out.push({ shopperId: `${tag}s${i}`, tripId: `${tag}t${i}` });
  return out;
}

export function tripBody(): string {
  return JSON.stringify({
    // network_ids: the processor formats' acquirer merchant id (CONTRACT §4b, processorFormats.ts).
    merchant: {
      name: 'Bench Store #0042',
      address: '1 Bench Way',
      lat: STORE.lat,
      lng: STORE.lng,
      network_ids: ['BENCH0042'],
    },
    currency: 'USD',
    tax_rate_bps: 925,
    tolerance_bps: 500,
    tolerance_cents: 200,
    orders: [{ order_id: 'o-1', items: ITEMS.map((i) => ({ ...i })) }],
  });
}

export function pickBody(item: (typeof ITEMS)[number], quantity: number = item.quantity): string {
  return `{"status":"picked","quantity":${quantity},"unit_price":"${item.unit_price}"}`;
}

/** xorshift32: cheap, seeded, good enough to pick shoppers and kinds. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  next(): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s / 0x100000000;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

export type SwipeKind = 'approve' | 'too_high' | 'wrong_merchant' | 'retry';

export interface Swipe {
  readonly kind: SwipeKind;
  readonly txn: string;
  readonly shopperId: string;
  readonly amount: string;
  readonly amountCents: number;
  readonly merchantName: string;
  /** The exact body bytes (ASCII); a retry resends the original's. */
  readonly json: string;
}

const RETRY_RING = 4096;

export class SwipeMix {
  private readonly ring: Swipe[] = [];
  private counter = 0;

  constructor(
    private readonly shoppers: readonly BenchShopper[],
    private readonly rng: Rng,
    /** Unique per phase and process: transaction ids never collide across phases. */
    private readonly tag: string,
  ) {}

  next(): Swipe {
    const r = this.rng.next();
    if (r >= 0.9 && this.ring.length > 0) {
      const earlier = this.ring[this.rng.int(this.ring.length)]!;
      return { ...earlier, kind: 'retry' };
    }
    const shopper = this.shoppers[this.rng.int(this.shoppers.length)]!;
    const kind: SwipeKind =
      r < 0.7 ? 'approve' : r < 0.8 ? 'too_high' : r >= 0.9 ? 'approve' : 'wrong_merchant';
    const amountCents = kind === 'too_high' ? 9_000_000 : 100 + this.rng.int(900);
    const amount = `${Math.floor(amountCents / 100)}.${String(amountCents % 100).padStart(2, '0')}`;
    const merchantName = kind === 'wrong_merchant' ? OTHER_STORE : STORE.name;
    const txn = `${this.tag}${(this.counter++).toString(36)}`;
    const json =
      `{"transaction_id":"${txn}","shopper_id":"${shopper.shopperId}","amount":"${amount}","currency":"USD",` +
      `"merchant":{"name":"${merchantName}","address":"${STORE.address}"},` +
      `"location":{"lat":${STORE.lat},"lng":${STORE.lng}}}`;
    const swipe: Swipe = { kind, txn, shopperId: shopper.shopperId, amount, amountCents, merchantName, json };
    if (this.ring.length < RETRY_RING) this.ring.push(swipe);
    else this.ring[this.rng.int(RETRY_RING)] = swipe;
    return swipe;
  }
}

/** The service's configuration in the bench (defaults except velocity): the script limits it passes. */
export const BENCH_CONFIG = loadConfig({ NODE_ENV: 'test', ...BENCH_SERVICE_ENV });

/**
 * KEYS and ARGV of authorizeSwipe for a swipe, built by the service's own function
 * (src/redis/commands.ts); used by the Redis-only driver and the bare script server. The
 * fingerprint is a plain string here (the service hashes it): same Redis work.
 */
export function authorizeCall(
  keys: Keys,
  s: { shopperId: string; amountCents: number; merchantName: string; txn: string; json?: string },
  signature: string,
  nowMs: number,
  eventId: string,
  authorizationId: string,
  config: Config = BENCH_CONFIG,
): { keys: string[]; args: Array<string | number> } {
  const idem = `t:${s.txn}`;
  return authorizeSwipeCall(
    { config, keys },
    {
      transactionId: s.txn,
      shopperId: s.shopperId,
      amountCents: s.amountCents,
      currency: 'USD',
      merchantName: s.merchantName,
      merchantAddress: STORE.address,
      merchantNameNorm: s.merchantName,
      merchantAddressNorm: STORE.address,
      lat: String(STORE.lat),
      lng: String(STORE.lng),
      idempotencyKey: idem,
      fingerprint: `${s.shopperId}|${s.merchantName}|${s.amountCents}`,
    },
    { nowMs, authorizationId, signature, eventId },
  );
}
