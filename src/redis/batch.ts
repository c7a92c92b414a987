// Independent commands over many partitions. Standalone Redis: one pipeline
// (one round trip). Redis Cluster: a pipeline must stay on one node, so each
// command goes alone and ioredis routes it to its slot's node (in parallel).
import { Cluster } from 'ioredis';
import type { RedisClient } from './client.js';

export type BatchCall = readonly [command: string, args: ReadonlyArray<string | number>];
export type BatchResult = Array<[Error | null, unknown]>;

export async function runBatch(client: RedisClient, calls: readonly BatchCall[]): Promise<BatchResult> {
  if (calls.length === 0) return [];
  if (client instanceof Cluster) {
    return Promise.all(
      calls.map(([command, args]) =>
        client.call(command, [...args]).then(
          (value): [Error | null, unknown] => [null, value],
          (err: unknown): [Error | null, unknown] => [
            err instanceof Error ? err : new Error(String(err)),
            null,
          ],
        ),
      ),
    );
  }
  const pipe = client.pipeline();
  for (const [command, args] of calls) pipe.call(command, [...args]);
  return ((await pipe.exec()) ?? []) as BatchResult;
}

/** runBatch, throwing the first error. */
export async function runBatchOrThrow(client: RedisClient, calls: readonly BatchCall[]): Promise<unknown[]> {
  const results = await runBatch(client, calls);
  for (const [err] of results) if (err) throw err;
  return results.map(([, value]) => value);
}
