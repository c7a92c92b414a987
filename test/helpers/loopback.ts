// Private servers of a test on loopback: a real HTTP server on a port the kernel picks
// (a peer region, a home, a broken peer), and a free port of a test's own range for a
// child process to listen on.
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServer as createNetServer } from 'node:net';

export interface LoopbackServer {
  /** `http://127.0.0.1:<port>` */
  readonly base: string;
  /** Keeps a response open (never answered) until close() destroys it. */
  hold(res: ServerResponse): void;
  /** Destroys the held responses and every connection, then closes the server. */
  close(): Promise<void>;
}

/** A real HTTP server on 127.0.0.1 answering every request with `handler`. */
export async function startLoopbackServer(
  handler: (req: IncomingMessage, res: ServerResponse, server: LoopbackServer) => void,
): Promise<LoopbackServer> {
  const held: ServerResponse[] = [];
  const server = createHttpServer((req, res) => handler(req, res, loopback));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const loopback: LoopbackServer = {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hold: (res) => void held.push(res),
    async close() {
      for (const res of held) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  return loopback;
}

/**
 * A port of `min`-`max` that is free now (checked by binding it) and not yet in `taken`;
 * it is added to `taken`. The scan starts at a random port so that two runs rarely collide.
 */
export async function freePortIn(min: number, max: number, taken: Set<number>): Promise<number> {
  const span = max - min + 1;
  const start = Math.floor(Math.random() * span);
  for (let i = 0; i < span; i++) {
    const port = min + ((start + i) % span);
    if (taken.has(port)) continue;
    const ok = await new Promise<boolean>((resolve) => {
      const s = createNetServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (ok) {
      taken.add(port);
      return port;
    }
  }
  throw new Error(`no free port in ${min}-${max}`);
}
