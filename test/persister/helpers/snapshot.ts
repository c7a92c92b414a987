// Every state key of a test api's namespace on a standalone Redis (type, decoded value, TTL), and
// the comparison hydrate must pass: the rebuilt keys equal what Redis held before the loss.
import type { Redis } from 'ioredis';
import { expect } from 'vitest';
import type { TestApi } from '../../helpers/api.js';

/** pttl: -1 = no TTL, else the absolute expiry time in ms (comparable across snapshots). */
export type Snapshot = Map<string, { type: string; value: unknown; pttl: number }>;
const NOT_STATE = /:(wal|wal:dead|meta|lease:persister|hydrate:lock)$/;

/** Every state key of the namespace: type, decoded value, TTL. */
export async function snapshot(api: TestApi): Promise<Snapshot> {
  const r = api.redis as Redis;
  const out: Snapshot = new Map();
  let cursor = '0';
  do {
    const [next, keys] = await r.scan(cursor, 'MATCH', `${api.config.redisPrefix}:*`, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      if (NOT_STATE.test(key)) continue;
      const type = await r.type(key);
      let value: unknown;
      if (type === 'hash') {
        const h = await r.hgetall(key);
        const decoded: Record<string, unknown> = {};
        for (const [f, v] of Object.entries(h)) decoded[f] = /:(items|picks)$/.test(key) ? JSON.parse(v) : v;
        value = decoded;
      } else if (type === 'zset') value = await r.call('ZRANGE', [key, 0, -1, 'WITHSCORES']);
      else if (type === 'list') value = await r.lrange(key, 0, -1);
      else if (type === 'string') {
        const s = (await r.get(key)) ?? '';
        value = key.includes(':rev:') ? JSON.parse(s) : s;
      } else value = type;
      // The marker upsertTrip leaves for the previous release (lua/upsertTrip-4.lua) is not trip state.
      if (type === 'hash' && JSON.stringify(value) === '{"spec_hash":"scoped-to-shopper"}') continue;
      const pttl = await r.pttl(key);
      out.set(key.slice(api.config.redisPrefix.length), {
        type,
        value,
        pttl: pttl < 0 ? pttl : Date.now() + pttl,
      });
    }
  } while (cursor !== '0');
  return out;
}

export function expectSameState(before: Snapshot, after: Snapshot): void {
  const missing = [...before.keys()].filter((k) => !after.has(k));
  if (missing.length > 0)
    console.error(
      'missing after hydrate',
      missing.map((k) => [k, before.get(k)]),
    );
  expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
  for (const [key, b] of before) {
    const a = after.get(key);
    expect({ key, type: a?.type, value: a?.value }).toEqual({ key, type: b.type, value: b.value });
    if (b.pttl < 0) expect(a?.pttl, key).toBe(b.pttl);
    // Scripts set TTLs in whole seconds from "now"; hydrate from the stored ms: equal within 2 s.
    else expect(Math.abs((a?.pttl ?? 0) - b.pttl), key).toBeLessThan(2_000);
  }
}
