// Test harness: a real api (in this process, on real Redis) and small clients
// for the webhook and trip API. Each harness uses its own key prefix.
import { randomBytes } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import { type RunningApi, startApi } from '../../src/app/api.js';
import { signatureHeader } from '../../src/auth/signature.js';
import { type Config, loadConfig } from '../../src/config/config.js';
import type { StorageFallback } from '../../src/decisions/authorize.js';
import { createLogger } from '../../src/observability/logger.js';
import { securityOptions } from '../../src/redis/client.js';
import { Keys } from '../../src/redis/keys.js';
import { cleanPrefix } from '../persister/helpers/redis.js';
import { walPayload } from './walPayload.js';

export const SECRET = 'test-signature-secret-0123456789';
export const TOKEN = 'test-api-token-0123456789abcdef';

export interface Reply {
  status: number;
  headers: Headers;
  text: string;
  json: Record<string, unknown>;
}

/** Signed webhook and bearer trip API calls against an api at `base` (this process's or another's). */
export interface ApiClient {
  swipe(body: unknown, opts?: { headers?: Record<string, string>; t?: number; raw?: string }): Promise<Reply>;
  reverse(body: unknown): Promise<Reply>;
  clear(body: unknown): Promise<Reply>;
  putTrip(shopperId: string, tripId: string, body: unknown): Promise<Reply>;
  pick(shopperId: string, tripId: string, itemId: string, body: unknown): Promise<Reply>;
  closeTrip(shopperId: string, tripId: string): Promise<Reply>;
  getTrip(shopperId: string, tripId: string): Promise<Reply>;
  request(method: string, path: string, body?: string, headers?: Record<string, string>): Promise<Reply>;
}

export function apiClient(base: string): ApiClient {
  async function request(method: string, path: string, body?: string, headers: Record<string, string> = {}) {
    const res = await fetch(base + path, { method, body, headers });
    const text = await res.text();
    let json: Record<string, unknown> = {};
    try {
      json = JSON.parse(text);
    } catch {
      json = {};
    }
    return { status: res.status, headers: res.headers, text, json };
  }
  const bearer = { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' };
  const signed = (raw: string, t = Math.floor(Date.now() / 1000)) => ({
    'Content-Type': 'application/json',
    'X-Signature': signatureHeader(SECRET, t, raw),
  });
  const tripPath = (s: string, t: string) => `/v1/shoppers/${s}/trips/${t}`;
  return {
    request,
    swipe(body, opts = {}) {
      const raw = opts.raw ?? JSON.stringify(body);
      return request('POST', '/v1/authorizations', raw, { ...signed(raw, opts.t), ...(opts.headers ?? {}) });
    },
    reverse(body) {
      const raw = JSON.stringify(body);
      return request('POST', '/v1/authorizations/reversals', raw, signed(raw));
    },
    clear(body) {
      const raw = JSON.stringify(body);
      return request('POST', '/v1/authorizations/clearings', raw, signed(raw));
    },
    putTrip: (s, t, body) => request('PUT', tripPath(s, t), JSON.stringify(body), bearer),
    pick: (s, t, item, body) =>
      request('POST', `${tripPath(s, t)}/items/${item}`, JSON.stringify(body), bearer),
    closeTrip: (s, t) =>
      request('POST', `${tripPath(s, t)}/close`, undefined, { Authorization: `Bearer ${TOKEN}` }),
    getTrip: (s, t) => request('GET', tripPath(s, t), undefined, { Authorization: `Bearer ${TOKEN}` }),
  };
}

export interface TestApi extends ApiClient {
  readonly config: Config;
  readonly api: RunningApi;
  readonly base: string;
  readonly keys: Keys;
  /** A plain client on the same Redis (or Cluster), for reading state and WAL streams. */
  readonly redis: Redis | Cluster;
  /** Every WAL entry of every partition, oldest first per partition. */
  walEvents(): Promise<
    Array<{ partition: number; id: string; e: string; t: string; d: Record<string, unknown> }>
  >;
  stop(): Promise<void>;
}

export function uniquePrefix(tag: string): string {
  return `t${tag}${randomBytes(4).toString('hex')}`;
}

/** The test's own connection to the api's Redis (standalone or Cluster, with its AUTH/TLS). */
function testRedisClient(config: Config): Redis | Cluster {
  if (config.redisClusterNodes.length > 0)
    return new Cluster(
      config.redisClusterNodes.map((n) => ({ host: n.split(':')[0], port: Number(n.split(':')[1]) })),
      { redisOptions: { ...securityOptions(config), maxRetriesPerRequest: 1 } },
    );
  return new Redis(config.redisUrl, {
    ...securityOptions(config),
    lazyConnect: false,
    maxRetriesPerRequest: 1,
  });
}

/** Every WAL entry of every partition, oldest first per partition. */
async function readWalEvents(redis: Redis | Cluster, keys: Keys, partitions: number) {
  const out: Array<{ partition: number; id: string; e: string; t: string; d: Record<string, unknown> }> = [];
  for (let p = 0; p < partitions; p++) {
    const entries = await redis.xrange(keys.wal(p), '-', '+');
    for (const [id, fields] of entries) {
      const f: Record<string, string> = {};
      for (let i = 0; i < fields.length; i += 2) f[fields[i] as string] = fields[i + 1] as string;
      out.push({ partition: p, id, e: f['e'] ?? '', t: f['t'] ?? '', d: walPayload(f) });
    }
  }
  return out;
}

export async function startTestApi(
  env: Record<string, string> = {},
  options: { fallback?: StorageFallback } = {},
): Promise<TestApi> {
  const config = loadConfig({
    NODE_ENV: 'test',
    HOST: '127.0.0.1',
    PORT: '0',
    METRICS_PORT: '0',
    REDIS_PREFIX: uniquePrefix('api'),
    SIGNATURE_SECRETS: SECRET,
    API_TOKENS: TOKEN,
    PARTITIONS: '8',
    LOG_LEVEL: 'silent',
    SHUTDOWN_GRACE_MS: '2000',
    ...env,
  });
  const api = await startApi(config, createLogger('silent'), options);
  const base = `http://127.0.0.1:${api.port}`;
  const keys = new Keys(config.redisPrefix, config.partitions);
  const redis = testRedisClient(config);

  // What the boot-time hydrate check does for an empty system: mark every
  // partition's state as intact (authorizeSwipe refuses to decide without it).
  await Promise.all(
    Array.from({ length: config.partitions }, (_, p) =>
      redis.hset(`${keys.base(p)}meta`, 'initialized_ms', Date.now()),
    ),
  );

  const client = apiClient(base);

  return {
    config,
    api,
    base,
    keys,
    redis,
    ...client,
    walEvents: () => readWalEvents(redis, keys, config.partitions),
    async stop() {
      await api.stop();
      // Remove this harness's keys (prefix is unique to it).
      if (redis instanceof Redis) await cleanPrefix(redis, config.redisPrefix);
      redis.disconnect();
    },
  };
}

/** A standard trip: Safeway at 123 Main St, milk 10 × 3.49 and apples 1.500 lb × 2.99. */
export function safewayTrip(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    merchant: { name: 'Safeway', address: '123 Main St', lat: 37.77, lng: -122.41 },
    currency: 'USD',
    tax_rate_bps: 925,
    tolerance_bps: 500,
    tolerance_cents: 200,
    orders: [
      {
        order_id: 'o-1',
        items: [
          { item_id: 'milk', quantity: 10, unit_price: '3.49' },
          { item_id: 'apples', quantity: '1.500', unit: 'lb', unit_price: '2.99' },
        ],
      },
    ],
    ...overrides,
  };
}

export function swipeBody(shopperId: string, amount: string, extra: Record<string, unknown> = {}) {
  return {
    transaction_id: `txn_${randomBytes(8).toString('hex')}`,
    shopper_id: shopperId,
    amount,
    currency: 'USD',
    merchant: { name: 'SAFEWAY #1234', address: '123 MAIN STREET' },
    ...extra,
  };
}

export function newId(tag: string): string {
  return `${tag}_${randomBytes(6).toString('hex')}`;
}

/** A new shopper's trip (safewayTrip) with milk 10 × 3.49 picked: ceiling 4013 cents. */
export async function tripWithMilk(h: ApiClient, tag = 's'): Promise<{ shopper: string; trip: string }> {
  const shopper = newId(tag);
  const trip = newId('trip');
  const put = await h.putTrip(shopper, trip, safewayTrip());
  if (put.status !== 201) throw new Error(`PUT trip: ${put.status} ${put.text}`);
  const pick = await h.pick(shopper, trip, 'milk', { status: 'picked', quantity: 10 });
  if (pick.status !== 200) throw new Error(`pick: ${pick.status} ${pick.text}`);
  return { shopper, trip };
}
