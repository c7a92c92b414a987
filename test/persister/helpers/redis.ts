// Redis for persister tests: the shared server with a unique key prefix, or a
// private redis-server child (for tests that flush or restart it).
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { type Cluster, Redis } from 'ioredis';
import { throwawayRedisArgs } from '../../helpers/redisServer.js';

export function uniquePrefix(tag = 'tpers'): string {
  return `${tag}${randomBytes(4).toString('hex')}`;
}

export function plainClient(url = 'redis://127.0.0.1:6379'): Redis {
  return new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: false, enableOfflineQueue: true });
}

/**
 * MONITOR on a raw socket. ioredis' monitor() marks its connection "monitoring" one
 * microtask after Redis' +OK, so a line about another client's command that arrives in the
 * same read is taken for a reply nobody asked for ("Command queue state error", and
 * monitor() rejects); on the shared Redis, other test files' traffic makes that common.
 * Here every line after +OK is a command line, parsed as ioredis parses it.
 */
export async function monitorClient(
  onCommand: (args: string[]) => void,
  port = 6379,
): Promise<{ close(): void }> {
  const socket = net.connect({ host: '127.0.0.1', port });
  let pending = '';
  let ok = false;
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.on('data', (chunk: Buffer) => {
      pending += chunk.toString('utf8');
      let end = pending.indexOf('\r\n');
      while (end >= 0) {
        const line = pending.slice(0, end);
        pending = pending.slice(end + 2);
        end = pending.indexOf('\r\n');
        if (!ok) {
          if (line !== '+OK') reject(new Error(`MONITOR answered ${line}`));
          ok = true;
          resolve();
          continue;
        }
        // +<time> [<db> <client>] "cmd" "arg" ...
        const first = line.indexOf('"');
        if (first < 0) continue;
        onCommand(
          line
            .slice(first + 1, -1)
            .split('" "')
            .map((a) => a.replace(/\\"/g, '"')),
        );
      }
    });
    socket.write('MONITOR\r\n');
  });
  socket.on('error', () => {});
  return { close: () => socket.destroy() };
}

/** Deletes every key under the prefix (SCAN + UNLINK; never FLUSH on the shared server). */
export async function cleanPrefix(client: Redis | Cluster, prefix: string): Promise<void> {
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
      child = spawn('redis-server', throwawayRedisArgs(port, '--daemonize', 'no'), { stdio: 'ignore' });
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
