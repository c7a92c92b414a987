// Redis for persister tests: the shared server with a unique key prefix, or a
// private redis-server child (for tests that flush or restart it).
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

export function uniquePrefix(tag = 'tpers'): string {
  return `${tag}${randomBytes(4).toString('hex')}`;
}

export function plainClient(url = 'redis://127.0.0.1:6379'): Redis {
  return new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: false, enableOfflineQueue: true });
}

/** Deletes every key under the prefix (SCAN + UNLINK; never FLUSH on the shared server). */
export async function cleanPrefix(client: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, found] = await client.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (found.length > 0) await client.unlink(...found);
  } while (cursor !== '0');
}

export interface PrivateRedis {
  readonly url: string;
  readonly port: number;
  start(): Promise<void>;
  /** SIGKILL-free stop: SHUTDOWN NOSAVE via the process (data is gone: no persistence). */
  stop(): Promise<void>;
}

export function privateRedis(port: number): PrivateRedis {
  let child: ChildProcess | undefined;
  const url = `redis://127.0.0.1:${port}`;
  async function waitUp(): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const c = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      try {
        await c.connect();
        await c.ping();
        c.disconnect();
        return;
      } catch {
        c.disconnect();
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    throw new Error(`private redis on ${port} did not start`);
  }
  return {
    url,
    port,
    async start() {
      child = spawn(
        'redis-server',
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--save',
          '',
          '--appendonly',
          'no',
          '--daemonize',
          'no',
        ],
        { stdio: 'ignore' },
      );
      await waitUp();
    },
    async stop() {
      const c = child;
      if (c === undefined || c.exitCode !== null) return;
      await new Promise<void>((resolve) => {
        c.once('exit', () => resolve());
        c.kill('SIGTERM');
        setTimeout(() => c.kill('SIGKILL'), 5000).unref();
      });
      child = undefined;
    },
  };
}
