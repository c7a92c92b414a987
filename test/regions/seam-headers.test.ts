// A forwarded request's headers come from the public request. One the HTTP client refuses
// to send (node:http refuses any character above \xff) must not turn into "home
// unreachable": that would give a fail-open approval to whoever sends it, and five of them
// would open the link's breaker for every shopper of that home. (uWebSockets, as tried on
// this version, drops or truncates such bytes before a handler sees them: this guards the
// seam itself.) Against a real home on loopback, the home's own answer comes back.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/config.js';
import type { Request, Route } from '../../src/http/server.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { Directory, type DirectoryStore, type Home, type HomeKey } from '../../src/regions/directory.js';
import { PEER_FAILURES_TO_OPEN, PeerLink } from '../../src/regions/peerLink.js';
import { withRegionSeam } from '../../src/regions/routing.js';

const SECRETS = ['seam-headers-secret-0123456789abcdef'];
let server: Server;
let base = '';
const seen: IncomingMessage['headers'][] = [];

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    seen.push(req.headers);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ decision: 'approved', mode: 'normal' }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

describe('region seam forwarded headers', () => {
  it('a header value the client cannot send is left out; the home answers, no fail-open', async () => {
    const config = {
      regions: { region: 'ra', secrets: SECRETS, forwardTimeoutMs: 2000 },
    } as unknown as Config;
    const link = new PeerLink('rh', base);
    const map = new Map<HomeKey, Home>([['s:456', { region: 'rh' }]]);
    const store: DirectoryStore = {
      get: async (k) => map.get(k),
      set: async (k, h) => void map.set(k, h),
      del: async (k) => void map.delete(k),
    };
    const route: Route = {
      method: 'post',
      pattern: '/v1/authorizations',
      label: '/v1/authorizations',
      paramCount: 0,
      bodyBytesMax: 16_384,
      requireJson: true,
      handler: (req: Request) =>
        req.regionUnreachable !== undefined
          ? { status: 200, body: JSON.stringify({ decision: 'approved', mode: 'fail_open' }) }
          : { status: 402, body: JSON.stringify({ decision: 'declined', reason: 'UNKNOWN_SHOPPER' }) },
    };
    const seam = {
      config,
      logger: createLogger('silent'),
      metrics: createMetrics({ defaultMetrics: false }),
      directory: new Directory(async () => undefined, store),
      links: new Map([['rh', link]]),
      announce: () => undefined,
    };
    const wrapped = withRegionSeam(seam, route);
    const swipe = (requestId: string): Request => ({
      params: [],
      headers: {
        contentType: 'application/json',
        contentLength: '',
        signature: 't=1,v1=ab',
        idempotencyKey: '',
        authorization: '',
        traceparent: '',
        tracestate: '',
        requestId,
        extra: [],
      },
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
