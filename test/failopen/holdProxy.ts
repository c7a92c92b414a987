// A loopback TCP proxy in front of a private redis-server that can hold the
// api's request-path connection (the one that named itself sa-api-decide):
// while held, bytes from the api are buffered, in order, and reach Redis only
// on release. Redis itself stays healthy and the other connections (trip API,
// replayer) keep flowing, so a test can force any ordering of "deadline",
// "late Redis decision" and "journal replay" without mocks.
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type PrivateRedis, startPrivateRedis } from './privateRedis.js';

export interface HoldProxy {
  readonly port: number;
  /** Buffer what the decision connection sends from now on. */
  hold(): void;
  /** Send everything buffered, in order, and stop buffering. */
  release(): void;
  close(): Promise<void>;
}

const DECISION_CLIENT_NAME = 'sa-api-decide';

export async function startHoldProxy(listenPort: number, redisPort: number): Promise<HoldProxy> {
  let holding = false;
  const decision = new Set<{ flush: () => void }>();
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(redisPort, '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    let isDecision = false;
    let sniffed = '';
    const buffered: Buffer[] = [];
    const entry = {
      flush: () => {
        for (const b of buffered.splice(0)) upstream.write(b);
      },
    };
    client.on('data', (chunk) => {
      if (!isDecision && sniffed.length < 4096) {
        sniffed += chunk.toString('latin1');
        if (sniffed.includes(DECISION_CLIENT_NAME)) {
          isDecision = true;
          decision.add(entry);
        }
      }
      if (isDecision && (holding || buffered.length > 0)) buffered.push(chunk);
      else upstream.write(chunk);
    });
    upstream.on('data', (chunk) => client.write(chunk));
    const end = () => {
      decision.delete(entry);
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listenPort, '127.0.0.1', () => resolve());
  });
  return {
    port: listenPort,
    hold: () => {
      holding = true;
    },
    release: () => {
      holding = false;
      for (const d of decision) d.flush();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A private Redis behind a hold proxy, and the api environment that points at it. */
export interface HeldRedis {
  readonly redis: PrivateRedis;
  readonly proxy: HoldProxy;
  /** REDIS_URL through the proxy, and a fail-open journal of this fixture's own. */
  readonly env: Readonly<Record<string, string>>;
  /** After the api stopped: closes the proxy, stops the Redis, removes the journal folder. */
  stop(): Promise<void>;
}

export async function startHeldRedis(redisPort: number, proxyPort: number, tag: string): Promise<HeldRedis> {
  const dir = mkdtempSync(join(tmpdir(), `sa-${tag}-`));
  const redis = await startPrivateRedis(redisPort);
  const proxy = await startHoldProxy(proxyPort, redisPort);
  return {
    redis,
    proxy,
    env: { REDIS_URL: `redis://127.0.0.1:${proxyPort}`, FAILOPEN_JOURNAL_PATH: join(dir, 'journal.jsonl') },
    async stop() {
      proxy.release();
      await proxy.close();
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
