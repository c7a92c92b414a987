// The link to a peer region against a real HTTP server on loopback: one attempt, the
// deadline, the breaker that stops sending to a peer that keeps failing, and the
// in-flight cap that refuses at once instead of queueing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PEER_FAILURES_TO_OPEN, PeerFailure, PeerLink } from '../../src/regions/peerLink.js';
import { type LoopbackServer, startLoopbackServer } from '../helpers/loopback.js';

let peer: LoopbackServer;
let received = 0;

beforeAll(async () => {
  peer = await startLoopbackServer((req, res, server) => {
    received++;
    if (req.url === '/hang') {
      server.hold(res); // never answered until the end
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.writeHead(201, { 'content-type': 'application/json', 'idempotent-replayed': 'true' });
      res.end(JSON.stringify({ method: req.method, url: req.url, body: Buffer.concat(chunks).toString() }));
    });
  });
});

afterAll(async () => {
  await peer.close();
});

const call = (path: string, timeoutMs = 2000) => ({
  method: 'POST',
  path,
  headers: { 'content-type': 'application/json' },
  body: Buffer.from('{"a":1}'),
  timeoutMs,
});

describe('PeerLink', () => {
  it('sends the request once and returns status, headers and body unchanged', async () => {
    const link = new PeerLink('peer', `${peer.base}/`);
    const reply = await link.send(call('/v1/x'));
    expect(reply.status).toBe(201);
    expect(reply.headers['idempotent-replayed']).toBe('true');
    expect(JSON.parse(reply.body.toString())).toEqual({ method: 'POST', url: '/v1/x', body: '{"a":1}' });
    link.close();
  });

  it('gives up at the deadline, and after repeated failures refuses without sending', async () => {
    const link = new PeerLink('slow', peer.base);
    for (let i = 0; i < PEER_FAILURES_TO_OPEN; i++) {
      const err = await link.send(call('/hang', 50)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PeerFailure);
      expect((err as PeerFailure).outcome).toBe('timeout');
    }
    const before = received;
    const err = await link.send(call('/v1/x')).catch((e: unknown) => e);
    expect((err as PeerFailure).outcome).toBe('refused');
    expect(received).toBe(before); // the open breaker sent nothing
    link.close();
  });

  it('a dead peer is an error, not a hang', async () => {
    const link = new PeerLink('dead', 'http://127.0.0.1:1');
    const err = await link.send(call('/v1/x')).catch((e: unknown) => e);
    expect((err as PeerFailure).outcome).toBe('error');
    link.close();
  });
});
