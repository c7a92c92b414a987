// region-takeover's arguments: what it refuses before touching any database.
import { describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/config.js';
import { parseTakeoverArgs, TakeoverUsageError } from '../../src/regions/takeover.js';

const config = { regions: { region: 'us-east-1' }, redisPrefix: 'sa' } as unknown as Config;
const ok = ['--from-region', 'us-west-2', '--replica-url', 'postgres://u@h:5432/swipe'];

describe('region-takeover arguments', () => {
  it('takes the lost region, the replica, and optionally the lost Redis, its prefix and an output file', () => {
    expect(parseTakeoverArgs(ok, config)).toEqual({
      fromRegion: 'us-west-2',
      replicaUrl: 'postgres://u@h:5432/swipe',
      lostRedisUrl: undefined,
      lostRedisPrefix: 'sa',
      out: undefined,
    });
    const all = [...ok, '--lost-redis-url', 'redis://r:6379', '--lost-redis-prefix', 'x', '--out', 'r.json'];
    expect(parseTakeoverArgs(all, config)).toMatchObject({
      lostRedisUrl: 'redis://r:6379',
      lostRedisPrefix: 'x',
      out: 'r.json',
    });
  });

  for (const [what, args, message] of [
    ['an unknown argument', [...ok, '--force', 'yes'], 'unknown argument --force'],
    ['a missing value', [...ok, '--out'], '--out needs a value'],
    ['no lost region', ['--replica-url', 'postgres://h/d'], '--from-region'],
    [
      'this region as the lost one',
      ['--from-region', 'us-east-1', '--replica-url', 'postgres://h/d'],
      'is this region',
    ],
    ['a bad region name', ['--from-region', 'US_WEST', '--replica-url', 'postgres://h/d'], '--from-region'],
    ['no replica', ['--from-region', 'us-west-2'], '--replica-url'],
    [
      'a replica that is not Postgres',
      ['--from-region', 'us-west-2', '--replica-url', 'mysql://h/d'],
      '--replica-url',
    ],
    ['a lost Redis that is not Redis', [...ok, '--lost-redis-url', 'http://r'], '--lost-redis-url'],
  ] as const) {
    it(`refuses ${what}`, () => {
      expect(() => parseTakeoverArgs([...args], config)).toThrow(TakeoverUsageError);
      expect(() => parseTakeoverArgs([...args], config)).toThrow(message);
    });
  }
});
