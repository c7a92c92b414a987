// A PRIVATE redis-server (child of the test process) on one of this suite's
// ports (16500-16599), to freeze (SIGSTOP/SIGCONT), kill -9, restart empty or
// slow down. Never the shared 127.0.0.1:6379: only PIDs started here are signalled.
import { type ChildProcess, spawn } from 'node:child_process';
import { Redis } from 'ioredis';
import { throwawayRedisArgs } from '../helpers/redisServer.js';

export interface PrivateRedis {
  readonly port: number;
  readonly url: string;
  pid(): number;
  /** SIGSTOP: the process stays, its sockets stay open, nothing is answered. */
  freeze(): void;
  thaw(): void;
  /** SIGKILL; without persistence every key is gone. */
  kill9(): Promise<void>;
  /** Starts a fresh (empty) server on the same port. */
  restart(): Promise<void>;
  /** A plain client for assertions (reconnects on its own). */
  client(): Redis;
  stop(): Promise<void>;
}

const PORT_MIN = 16500;
const PORT_MAX = 16599;

async function waitForPing(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const probe = new Redis({
      port,
      host: '127.0.0.1',
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    probe.on('error', () => {});
    try {
      await probe.connect();
      if ((await probe.ping()) === 'PONG') return;
    } catch {
      // not up yet
    } finally {
      probe.disconnect();
    }
    if (Date.now() > deadline)
      throw new Error(`private redis on ${port} did not start within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Ports of the issue-19 tests (orderings, saturation), apart from the fault suite's. */
const ISSUE19_PORT_MIN = 17500;
const ISSUE19_PORT_MAX = 17599;
/** Ports of the processor tests (issue 20). */
const ISSUE20_PORT_MIN = 17600;
const ISSUE20_PORT_MAX = 17699;

export async function startPrivateRedis(port: number): Promise<PrivateRedis> {
  const inRange =
    (port >= PORT_MIN && port <= PORT_MAX) ||
    (port >= ISSUE19_PORT_MIN && port <= ISSUE19_PORT_MAX) ||
    (port >= ISSUE20_PORT_MIN && port <= ISSUE20_PORT_MAX);
  if (!inRange)
    throw new Error(
      `private redis port ${port} outside ${PORT_MIN}-${PORT_MAX}, ${ISSUE19_PORT_MIN}-${ISSUE19_PORT_MAX} and ${ISSUE20_PORT_MIN}-${ISSUE20_PORT_MAX}`,
    );
  let proc: ChildProcess | undefined;
  let plain: Redis | undefined;

  async function launch(): Promise<void> {
    proc = spawn('redis-server', throwawayRedisArgs(port, '--enable-debug-command', 'local'), {
      stdio: 'ignore',
    });
    proc.unref();
    await waitForPing(port, 5000);
  }

  function mine(): ChildProcess {
    if (proc === undefined || proc.pid === undefined) throw new Error('private redis not running');
    return proc;
  }

  async function kill9(): Promise<void> {
    const p = mine();
    if (p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGCONT'); // a stopped process must not stay stopped forever
    p.kill('SIGKILL');
    await exited;
  }

  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    pid: () => mine().pid as number,
    freeze: () => mine().kill('SIGSTOP'),
    thaw: () => mine().kill('SIGCONT'),
    kill9,
    restart: launch,
    client() {
      if (plain === undefined) {
        plain = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1 });
        plain.on('error', () => {});
      }
      return plain;
    },
    async stop() {
      plain?.disconnect();
      if (proc !== undefined) await kill9();
    },
  };
}
