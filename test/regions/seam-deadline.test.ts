// The seam's end-to-end budget against a real silent home on loopback: when the pod's
// directory copy is old and the region's copy gone, finding the home (asking the peers)
// and asking it must share one REGION_FORWARD_TIMEOUT_MS, so the fail-open answer still
// comes inside the processor's 1 s deadline. Before, each took the whole timeout (2x).
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { signForward } from '../../src/regions/channel.js';
import {
  DIRECTORY_LOCAL_TTL_MS,
  Directory,
  type Home,
  type HomeKey,
  shopperKey,
} from '../../src/regions/directory.js';
import { PeerLink } from '../../src/regions/peerLink.js';
import { withRegionSeam } from '../../src/regions/routing.js';
import { type LoopbackServer, startLoopbackServer } from '../helpers/loopback.js';
import { mapStore, requestHeaders, seamDeps, swipeRoute } from './seamParts.js';

const T = 400;
const SECRETS = ['seam-deadline-secret-0123456789abcdef'];
let home: LoopbackServer;

beforeAll(async () => {
  home = await startLoopbackServer((req, res, server) => {
    req.resume();
    server.hold(res); // the home accepts and never answers (frozen)
  });
});

afterAll(async () => {
  await home.close();
});

describe('region seam deadline', () => {
  it('a silent home behind an old directory entry: fail-open answer within one forward timeout', async () => {
    const link = new PeerLink('rh', home.base);
    const store = mapStore();
    // The peers are asked over the real link (the silent home is the only peer).
    const ask = async (key: HomeKey): Promise<Home | undefined> => {
      const path = `/internal/regions/home/shopper/${key.slice(2)}`;
      const sig = signForward(SECRETS, 'ra', { method: 'GET', path, body: Buffer.alloc(0) }, 0);
      await link.send({ method: 'GET', path, headers: sig, body: Buffer.alloc(0), timeoutMs: T });
      return undefined;
    };
    const directory = new Directory(ask, store);
    const key = shopperKey('456');
    await directory.learn(key, { region: 'rh' });
    store.map.delete(key); // the region's copy expired
    const realNow = Date.now.bind(Date);
    const clock = vi.spyOn(Date, 'now').mockImplementation(() => realNow() + DIRECTORY_LOCAL_TTL_MS + 1000);
    // (a clock that runs on, moved past this pod's copy's TTL: that copy is old)

    const seam = seamDeps({ secrets: SECRETS, forwardTimeoutMs: T }, directory, link);
    const wrapped = withRegionSeam(seam, swipeRoute());
    const started = performance.now();
    const res = await wrapped.handler({
      params: [],
      headers: requestHeaders(),
      body: Buffer.from(JSON.stringify({ shopper_id: 456, amount: '1.00' })),
      startedNs: 0n,
    });
    const ms = performance.now() - started;
    clock.mockRestore();
    link.close();
    // The silent home is still the home: the fail-open policy answers (never a decline)...
    expect(JSON.parse(res.body as string)).toEqual({ decision: 'approved', mode: 'fail_open' });
    // ...after about one forward timeout; two of them (800 ms) plus the decisions break 1 s.
    expect(ms).toBeLessThan(T * 1.5);
  });
});
