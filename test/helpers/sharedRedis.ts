// The shared Redis on 127.0.0.1:6379 for one test file: connected before its tests, closed after.
// For tests that EVAL a Lua helper against its TypeScript twin and write no keys.
import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';

/** Registers the file's beforeAll/afterAll; call the returned function inside a test. */
export function sharedRedisForFile(): () => Redis {
  let redis: Redis | undefined;
  beforeAll(async () => {
    redis = new Redis({
      host: '127.0.0.1',
      port: 6379,
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 2_000,
    });
    await redis.connect();
  });
  afterAll(async () => {
    await redis?.quit();
  });
  return () => {
    if (redis === undefined) throw new Error('the shared Redis is used before beforeAll ran');
    return redis;
  };
}
