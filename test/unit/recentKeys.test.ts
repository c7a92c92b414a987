import { describe, expect, test } from 'vitest';
import { type RecentDecision, RecentKeys } from '../../src/decisions/recentKeys.js';

test('reports a key decided for another shopper, within its ttl and bound', () => {
  const keys = new RecentKeys(2, 1000);
  keys.remember('t:a', { shopperId: 's1', authorizationId: 'auth_1' }, 0);
  expect(keys.conflict('t:a', 's1', 10)).toBeUndefined();
  expect(keys.conflict('t:a', 's2', 10)).toEqual({ authorizationId: 'auth_1' });
  expect(keys.conflict('t:a', 's2', 1001)).toBeUndefined(); // expired
  keys.remember('t:b', { shopperId: 's1', authorizationId: 'auth_2' }, 0);
  keys.remember('t:c', { shopperId: 's1', authorizationId: 'auth_3' }, 0);
  keys.remember('t:d', { shopperId: 's1', authorizationId: 'auth_4' }, 0); // evicts the oldest (t:b)
  expect(keys.conflict('t:b', 's9', 1)).toBeUndefined();
  expect(keys.conflict('t:c', 's9', 1)?.authorizationId).toBe('auth_3');
  expect(keys.conflict('t:d', 's9', 1)?.authorizationId).toBe('auth_4');
  expect(keys.size).toBe(2);
  expect(RecentKeys.tracks('d:abc')).toBe(false);
  expect(RecentKeys.tracks('t:abc')).toBe(true);
});

test('the first decision of a key is kept until it expires, then replaced', () => {
  const keys = new RecentKeys(10, 1000);
  keys.remember('t:x', { shopperId: 's1', authorizationId: 'auth_first' }, 0);
  keys.remember('t:x', { shopperId: 's2', authorizationId: 'auth_second' }, 500);
  expect(keys.conflict('t:x', 's3', 600)).toEqual({ authorizationId: 'auth_first' });
  expect(keys.conflict('t:x', 's1', 600)).toBeUndefined();
  keys.remember('t:x', { shopperId: 's2', authorizationId: 'auth_later' }, 1500);
  expect(keys.conflict('t:x', 's1', 1600)).toEqual({ authorizationId: 'auth_later' });
  expect(keys.size).toBe(1);
});

test('keeps authorization ids byte for byte, and skips ones it cannot hold', () => {
  const keys = new RecentKeys(10, 1000);
  const uuidForm = 'auth_e1ec91c9-19ee-452c-bf9a-270f33114502';
  keys.remember('t:u', { shopperId: 's1', authorizationId: uuidForm }, 0);
  expect(keys.conflict('t:u', 's2', 1)).toEqual({ authorizationId: uuidForm });
  const longest = `auth_${'a'.repeat(59)}`;
  keys.remember('t:l', { shopperId: 's1', authorizationId: longest }, 0);
  expect(keys.conflict('t:l', 's2', 1)).toEqual({ authorizationId: longest });
  keys.remember('t:too-long', { shopperId: 's1', authorizationId: `${longest}b` }, 0);
  keys.remember('t:not-ascii', { shopperId: 's1', authorizationId: 'auth_é' }, 0);
  expect(keys.conflict('t:too-long', 's2', 1)).toBeUndefined();
  expect(keys.conflict('t:not-ascii', 's2', 1)).toBeUndefined();
});

test('non-ASCII keys and shopper ids hash like any other string', () => {
  const keys = new RecentKeys(10, 1000);
  keys.remember('t:café-😀', { shopperId: 'шоппер', authorizationId: 'auth_1' }, 0);
  expect(keys.conflict('t:café-😀', 'шоппер', 1)).toBeUndefined();
  expect(keys.conflict('t:café-😀', 'шоппер2', 1)).toEqual({ authorizationId: 'auth_1' });
  expect(keys.conflict('t:cafe-😀', 'шоппер2', 1)).toBeUndefined();
});

test('no false conflicts among 300,000 distinct keys of similar shape', () => {
  const keys = new RecentKeys(300_000, 60_000);
  for (let i = 0; i < 300_000; i++)
    keys.remember(
      `t:txn_${i.toString(16).padStart(16, '0')}`,
      { shopperId: 's1', authorizationId: `a${i}` },
      0,
    );
  let found = 0;
  for (let i = 0; i < 300_000; i++) {
    if (keys.conflict(`t:txn_${i.toString(16).padStart(16, '0')}`, 's2', 1)?.authorizationId === `a${i}`)
      found++;
    // Never remembered: must never look like a conflict.
    expect(keys.conflict(`t:txn_${(i + 300_000).toString(16).padStart(16, '0')}`, 's2', 1)).toBeUndefined();
  }
  expect(found).toBe(300_000);
});

/**
 * The behaviour the table must have, written the obvious way: an entry lasts until its ttl
 * has passed or `entriesMax` later keys have been remembered, whichever comes first.
 */
class ReferenceModel {
  private readonly entries = new Map<
    string,
    { shopperId: string; authorizationId: string; atMs: number; seq: number }
  >();
  private inserted = 0;
  constructor(
    private readonly entriesMax: number,
    private readonly ttlMs: number,
  ) {}
  private live(key: string, nowMs: number): { shopperId: string; authorizationId: string } | undefined {
    const hit = this.entries.get(key);
    if (hit === undefined) return undefined;
    if (nowMs - hit.atMs > this.ttlMs || this.inserted - hit.seq > this.entriesMax) {
      this.entries.delete(key);
      return undefined;
    }
    return hit;
  }
  conflict(key: string, shopperId: string, nowMs: number): { authorizationId: string } | undefined {
    const hit = this.live(key, nowMs);
    return hit === undefined || hit.shopperId === shopperId
      ? undefined
      : { authorizationId: hit.authorizationId };
  }
  remember(key: string, d: RecentDecision, nowMs: number): void {
    if (this.live(key, nowMs) !== undefined) return;
    this.entries.set(key, { ...d, atMs: nowMs, seq: this.inserted++ });
  }
}

describe('matches the reference model on random operations', () => {
  // Deterministic PRNG (mulberry32): the same sequence on every run.
  function rng(seed: number): () => number {
    let a = seed;
    return () => {
      a = (a + 0x6d2b79f5) | 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  test.each([1, 2, 3, 4, 5])('seed %i: 20,000 operations on a table of 64', (seed) => {
    const random = rng(seed);
    const capacity = 64;
    const table = new RecentKeys(capacity, 500);
    const model = new ReferenceModel(capacity, 500);
    let now = 0;
    for (let op = 0; op < 20_000; op++) {
      now += Math.floor(random() * 5);
      const key = `t:k${Math.floor(random() * 150)}`;
      const shopper = `s${Math.floor(random() * 3)}`;
      if (random() < 0.5) {
        const d = { shopperId: shopper, authorizationId: `auth_${op}` };
        table.remember(key, d, now);
        model.remember(key, d, now);
      } else {
        expect(table.conflict(key, shopper, now), `op ${op} ${key} ${shopper}`).toEqual(
          model.conflict(key, shopper, now),
        );
      }
    }
    expect(table.size).toBeLessThanOrEqual(capacity);
  });
});
