// WriteCoalescer on the shared Redis (unique key prefix): the commands of one event-loop
// turn leave in at most two socket writes, the first at once, and every reply still
// reaches its own caller.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WriteCoalescer } from '../../src/redis/coalesce.js';
import type { RedisClient } from '../../src/redis/client.js';
import { cleanPrefix, uniquePrefix } from '../persister/helpers/redis.js';

const prefix = uniquePrefix('tcoal');
let client: Redis;

interface CountedSocket {
  _write: (...a: unknown[]) => unknown;
  _writev: (...a: unknown[]) => unknown;
}

/** Counts the writes the socket hands to the OS (one _write or _writev each). */
function countWrites(): { writes: number; writevs: number; chunks: number } {
  const counts = { writes: 0, writevs: 0, chunks: 0 };
  const socket = (client as unknown as { stream: CountedSocket }).stream;
  const write = socket._write.bind(socket);
  const writev = socket._writev.bind(socket);
  socket._write = (...a: unknown[]) => {
    counts.writes++;
    counts.chunks++;
    return write(...a);
  };
  socket._writev = (...a: unknown[]) => {
    counts.writevs++;
    counts.chunks += (a[0] as unknown[]).length;
    return writev(...a);
  };
  return counts;
}

beforeAll(async () => {
  client = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
  await client.ping();
});

afterAll(async () => {
  await cleanPrefix(client, prefix);
  client.disconnect();
});

describe('WriteCoalescer', () => {
  it('sends the first command of a turn at once and the other 49 in one writev', async () => {
    const coalescer = new WriteCoalescer(client as unknown as RedisClient);
    const counts = countWrites();
    const replies: Promise<unknown>[] = [];
    for (let i = 0; i < 50; i++) {
      coalescer.hold();
      replies.push(client.set(`${prefix}:k${i}`, `v${i}`).then(() => client.get(`${prefix}:k${i}`)));
    }
    // Before the turn ends, only the first command has left.
    expect(counts.writes + counts.writevs).toBe(1);
    await new Promise((r) => setImmediate(r));
    expect(counts.writes).toBe(1);
    expect(counts.writevs).toBe(1);
    expect(counts.chunks).toBe(50);
    expect(await Promise.all(replies)).toEqual(Array.from({ length: 50 }, (_, i) => `v${i}`));
  });

  it('a lone command per turn is written at once, never held', async () => {
    const coalescer = new WriteCoalescer(client as unknown as RedisClient);
    const counts = countWrites();
    for (let i = 0; i < 5; i++) {
      coalescer.hold();
      const reply = client.incr(`${prefix}:n`);
      expect(counts.writes).toBe(i + 1);
      expect(await reply).toBe(i + 1);
      await new Promise((r) => setImmediate(r));
    }
    expect(counts.writevs).toBe(0);
  });
});
