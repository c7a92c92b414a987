// A hostile or broken peer against the link, on a real loopback server: the answer's
// head arrives and then the body stalls, is cut off, or is far too large. Each must end
// in a PeerFailure by the deadline (never a hang, never a truncated body taken as the
// answer), and the link's in-flight count must come back to zero.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PEER_REPLY_BYTES_MAX, PeerFailure, PeerLink } from '../../src/regions/peerLink.js';
import { type LoopbackServer, startLoopbackServer } from '../helpers/loopback.js';

let peer: LoopbackServer;

beforeAll(async () => {
  peer = await startLoopbackServer((req, res, server) => {
    req.resume();
    if (req.url === '/stall') {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
      res.write('{"decision":'); // the rest never comes
      server.hold(res);
    } else if (req.url === '/cut') {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
      res.write('{"decision":"approved"', () => res.socket?.destroy());
    } else if (req.url === '/huge') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(Buffer.alloc(PEER_REPLY_BYTES_MAX + 65536, 0x61));
    } else res.end('{}');
  });
});

afterAll(async () => {
  await peer.close();
});

const call = (path: string, timeoutMs: number) => ({
  method: 'GET',
  path,
  headers: {},
  body: Buffer.alloc(0),
  timeoutMs,
});

/** Settles within `ms` or reports a hang (the link must settle by its own deadline). */
function settled<T>(p: Promise<T>, ms: number): Promise<T | 'hang' | unknown> {
  return Promise.race([
    p.catch((e: unknown) => e),
    new Promise<'hang'>((r) => setTimeout(() => r('hang'), ms)),
  ]);
}

const inflight = (link: PeerLink) => (link as unknown as { inflight: number }).inflight;

describe('PeerLink against a broken peer', () => {
  it('a body that stalls after the head fails at the deadline', async () => {
    const link = new PeerLink('stall', peer.base);
    const got = await settled(link.send(call('/stall', 200)), 3000);
    expect(got).toBeInstanceOf(PeerFailure);
    expect((got as PeerFailure).outcome).toBe('timeout');
    expect(inflight(link)).toBe(0);
    link.close();
  });

  it('a body cut off by the peer is a failure, not a truncated answer', async () => {
    const link = new PeerLink('cut', peer.base);
    const got = await settled(link.send(call('/cut', 500)), 3000);
    expect(got).toBeInstanceOf(PeerFailure);
    expect(inflight(link)).toBe(0);
    link.close();
  });

  it('an answer over the size cap is a failure, not a truncated answer', async () => {
    const link = new PeerLink('huge', peer.base);
    const got = await settled(link.send(call('/huge', 2000)), 5000);
    expect(got).toBeInstanceOf(PeerFailure);
    expect(inflight(link)).toBe(0);
    link.close();
  });
});
