// The bench's Redis-only driver and bare script server (limits 2 and 3) call authorizeSwipe with
// the arguments the service's own typed function builds: a script change cannot leave them
// measuring refused calls.
import { Redis } from 'ioredis';
import { afterAll, expect, it } from 'vitest';
import { authorizeCall } from '../../bench/workload.js';
import { Keys } from '../../src/redis/keys.js';
import { ScriptRunner } from '../../src/redis/scripts.js';
import { uniquePrefix } from '../helpers/api.js';

const redis = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
const keys = new Keys(uniquePrefix('benchcall'), 4);

afterAll(async () => {
  const found = await redis.keys(`${keys.prefix}:*`);
  if (found.length > 0) await redis.del(...found);
  redis.disconnect();
});

it('decides (UNKNOWN_SHOPPER for a shopper without a trip), never refuses its arguments', async () => {
  const runner = new ScriptRunner(redis, undefined, undefined);
  const swipe = { shopperId: 'bench-nobody', amountCents: 100, merchantName: 'safeway', txn: 'txn-bench-1' };
  await redis.hset(`${keys.base(keys.partition(swipe.shopperId))}meta`, 'initialized_ms', 1);
  const call = authorizeCall(keys, swipe, '', Date.now(), 'ev-1', 'auth_bench1');
  const reply = (await runner.run('authorizeSwipe', call.keys, call.args)) as unknown[];
  expect(reply[0]).toBe(2);
});
