// The pre-encoded EVALSHA (src/redis/frame.ts): the bytes must be exactly what ioredis
// would have sent, and a script missing from Redis' cache (restart, SCRIPT FLUSH) must
// still run. The second part runs on a PRIVATE redis-server (SCRIPT FLUSH would touch
// every other user of the shared one).
import { Command, type Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EvalshaFrames, type FrameArg, FrameCommand, isNoScript } from '../../src/redis/frame.js';
import { ScriptRunner } from '../../src/redis/scripts.js';
import { SCRIPTS } from '../../src/redis/scripts.generated.js';
import { type PrivateRedis, startPrivateRedis } from '../failopen/privateRedis.js';

/** The frame ioredis' own path writes for the same call. */
function ioredisFrame(sha: string, keys: string[], args: FrameArg[]): Buffer {
  const command = new Command('evalsha', [sha, keys.length, ...keys, ...args] as Array<string | number>);
  // What ioredis does to every argument before it writes (null -> '', numbers -> digits).
  (command as unknown as { stringifyArguments(): void }).stringifyArguments();
  const written = command.toWritable(undefined as never);
  return typeof written === 'string' ? Buffer.from(written) : written;
}

describe('EvalshaFrames.encode', () => {
  const frames = new EvalshaFrames(SCRIPTS.authorizeSwipe.lua, 4);

  it('uses the SHA1 Redis caches the script by', () => {
    expect(frames.sha).toMatch(/^[0-9a-f]{40}$/);
  });

  it.each([
    [
      'plain ASCII',
      ['a:{p1}:shopper:s1', 'a:{p1}:idem:t:x', 'a:{p1}:sig:-', 'a:{p1}:wal'],
      ['1', 'ev', 'au'],
    ],
    ['numbers, zero and negatives', ['k1', 'k2', 'k3', 'k4'], [0, 7, 1234567890123, -5, 10, 100]],
    ['fractions and integers past 2^53', ['k1', 'k2', 'k3', 'k4'], [1.5, -0.25, 2 ** 60, -(2 ** 70), 1e21]],
    ['null and undefined', ['k1', 'k2', 'k3', 'k4'], [null, undefined, 'x', null]],
    ['empty strings', ['', 'k2', '', 'k4'], ['', '', 'x', '']],
    ['multi-byte UTF-8', ['k:é', 'k:日本', 'k:😀', 'k'], ['Café Müller', '東京都', '🛒 x', 'a\r\nb']],
    ['a long argument', ['k1', 'k2', 'k3', 'k4'], ['x'.repeat(70_000), 'y']],
  ] as Array<[string, string[], FrameArg[]]>)('is byte-identical to ioredis for %s', (_name, keys, args) => {
    const ours = frames.encode(keys, args);
    expect(ours.equals(ioredisFrame(frames.sha, keys, args))).toBe(true);
  });

  it('routes by its keys only (Cluster slot from the first key)', () => {
    const keys = ['a:{p9}:shopper:s', 'a:{p9}:idem:t:1', 'a:{p9}:sig:-', 'a:{p9}:wal'];
    const cmd = new FrameCommand(frames.encode(keys, ['x']), frames.sha, keys);
    expect(cmd.getKeys()).toEqual(keys);
    expect(cmd.getSlot()).toBe(new Command('get', ['{p9}']).getSlot());
  });
});

describe('isNoScript', () => {
  it('recognises only the NOSCRIPT reply', () => {
    expect(isNoScript(new Error('NOSCRIPT No matching script. Please use EVAL.'))).toBe(true);
    expect(isNoScript(new Error('ERR something else'))).toBe(false);
    expect(isNoScript('NOSCRIPT')).toBe(false);
  });
});

describe('ScriptRunner on a private Redis', () => {
  let server: PrivateRedis;
  let client: Redis;
  const tripKey = 'tframe:{p1}:trip:shopper-é:t1';

  /** Calls per command since RESETSTAT; "failed" = EVALSHAs answered with an error (NOSCRIPT here). */
  async function callCounts(): Promise<{ evalsha: number; failed: number; eval: number }> {
    const info = await client.info('commandstats');
    const stat = (cmd: string, field: string) =>
      Number(new RegExp(`cmdstat_${cmd}:.*\\b${field}=(\\d+)`).exec(info)?.[1] ?? 0);
    return {
      evalsha: stat('evalsha', 'calls'),
      failed: stat('evalsha', 'failed_calls'),
      eval: stat('eval', 'calls'),
    };
  }

  beforeAll(async () => {
    server = await startPrivateRedis(16550);
    client = server.client();
    await client.hset(tripKey, 'shopper', 'shopper-é', 'status', 'open');
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('answers through the frame, and after SCRIPT FLUSH through one EVAL, then the frame again', async () => {
    const runner = new ScriptRunner(server.client(), undefined, undefined);
    await client.config('RESETSTAT');
    // Redis has never seen the script: NOSCRIPT, then one EVAL loads it.
    const first = await runner.run('readTrip', [tripKey], ['shopper-é', 10, 't1']);
    expect(JSON.parse(first as string).trip).toMatchObject({ shopper: 'shopper-é', status: 'open' });
    expect(await callCounts()).toEqual({ evalsha: 1, failed: 1, eval: 1 });

    // Cached now: frames only.
    for (let i = 0; i < 5; i++)
      expect(await runner.run('readTrip', [tripKey], ['shopper-é', 10, 't1'])).toBe(first);
    expect(await callCounts()).toEqual({ evalsha: 6, failed: 1, eval: 1 });

    // The cache is emptied (as by a restart): the next call still answers.
    await client.script('FLUSH');
    expect(await runner.run('readTrip', [tripKey], ['shopper-é', 10, 't1'])).toBe(first);
    expect(
      await runner.run('readTrip', ['tframe:{p1}:trip:other-shopper:t1'], ['other-shopper', 10, 't1']),
    ).toBe('');
    expect(await callCounts()).toEqual({ evalsha: 8, failed: 2, eval: 2 });
  });

  it('passes any other Redis error to the caller', async () => {
    const runner = new ScriptRunner(server.client(), undefined, undefined);
    await client.set('tframe:{p1}:trip:s:plain', 'x');
    // HGETALL on a string key: WRONGTYPE from inside the script, not retried.
    await expect(runner.run('readTrip', ['tframe:{p1}:trip:s:plain'], ['s', 10, 'plain'])).rejects.toThrow(
      /WRONGTYPE/,
    );
  });
});
