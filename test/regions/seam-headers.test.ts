// A forwarded request's headers come from the public request. One the HTTP client refuses
// to send (node:http refuses any character above \xff) must not turn into "home
// unreachable": that would give a fail-open approval to whoever sends it, and five of them
// would open the link's breaker for every shopper of that home. (uWebSockets, as tried on
// this version, drops or truncates such bytes before a handler sees them: this guards the
// seam itself.) Against a real home on loopback, the home's own answer comes back.
import type { IncomingMessage } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Request } from '../../src/http/server.js';
import { Directory } from '../../src/regions/directory.js';
import { PEER_FAILURES_TO_OPEN, PeerLink } from '../../src/regions/peerLink.js';
import { withRegionSeam } from '../../src/regions/routing.js';
import { type LoopbackServer, startLoopbackServer } from '../helpers/loopback.js';
import { mapStore, requestHeaders, seamDeps, swipeRoute } from './seamParts.js';

const SECRETS = ['seam-headers-secret-0123456789abcdef'];
let home: LoopbackServer;
const seen: IncomingMessage['headers'][] = [];

beforeAll(async () => {
  home = await startLoopbackServer((req, res) => {
    req.resume();
    seen.push(req.headers);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ decision: 'approved', mode: 'normal' }));
  });
});

afterAll(async () => {
  await home.close();
});

describe('region seam forwarded headers', () => {
  it('a header value the client cannot send is left out; the home answers, no fail-open', async () => {
    const link = new PeerLink('rh', home.base);
    const directory = new Directory(async () => undefined, mapStore([['s:456', { region: 'rh' }]]));
    const seam = seamDeps({ secrets: SECRETS, forwardTimeoutMs: 2000 }, directory, link);
    const wrapped = withRegionSeam(seam, swipeRoute());
    const swipe = (requestId: string): Request => ({
      params: [],
      headers: requestHeaders({ signature: 't=1,v1=ab', requestId }),
      body: Buffer.from(JSON.stringify({ shopper_id: 456, amount: '1.00' })),
      startedNs: 0n,
    });
    for (let i = 0; i <= PEER_FAILURES_TO_OPEN; i++) {
      const res = await wrapped.handler(swipe('req-€'));
      expect(JSON.parse(res.body as string)).toEqual({ decision: 'approved', mode: 'normal' });
    }
    expect(seen).toHaveLength(PEER_FAILURES_TO_OPEN + 1);
    expect(seen[0]?.['x-request-id']).toBeUndefined();
    expect(seen[0]?.['x-signature']).toBe('t=1,v1=ab');
    link.close();
  });
});
