// The announce endpoint learns homes only for the region that signed the announcement:
// a peer (or a captured announcement re-sent within the clock tolerance) cannot point
// keys at a third region or at a name that is no region, which would turn that shopper's
// swipes here into forwards to the wrong place and a decline. Real channel signatures.
import { describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/config.js';
import type { Request } from '../../src/http/server.js';
import { createLogger } from '../../src/observability/logger.js';
import { signForward } from '../../src/regions/channel.js';
import { Directory } from '../../src/regions/directory.js';
import { type InternalDeps, internalRoutes } from '../../src/regions/internal.js';
import { mapStore } from './seamParts.js';

const SECRETS = ['announce-origin-secret-0123456789abcdef'];
const PATH = '/internal/regions/announce';

function setup() {
  const store = mapStore();
  const map = store.map;
  const directory = new Directory(async () => undefined, store);
  const config = {
    regions: {
      region: 'ra',
      secrets: SECRETS,
      peers: new Map([
        ['rb', ''],
        ['rc', ''],
      ]),
    },
  } as unknown as Config;
  // The announce handler reads only config, logger and directory.
  const deps = { config, logger: createLogger('silent'), directory } as unknown as InternalDeps;
  const route = internalRoutes(deps).find((r) => r.pattern === PATH);
  if (route === undefined) throw new Error('no announce route');
  const send = (origin: string, body: unknown) => {
    const raw = Buffer.from(JSON.stringify(body));
    const h = signForward(
      SECRETS,
      origin,
      { method: 'POST', path: PATH, body: raw },
      Math.floor(Date.now() / 1000),
    );
    const req = {
      params: [],
      headers: { extra: [h['x-region-origin'], h['x-region-timestamp'], h['x-region-signature']] },
      body: raw,
      startedNs: 0n,
    } as unknown as Request;
    return route.handler(req);
  };
  return { map, directory, send };
}

describe('announce endpoint', () => {
  it('learns the keys of the signing region', async () => {
    const { directory, send } = setup();
    const res = await send('rb', { region: 'rb', keys: [{ key: 's:1' }] });
    expect(res.status).toBe(200);
    expect(await directory.peek('s:1')).toEqual({ region: 'rb' });
  });

  it('refuses an announcement for another region than the one that signed it', async () => {
    const { directory, send } = setup();
    for (const region of ['rc', 'nowhere']) {
      const res = await send('rb', { region, keys: [{ key: 's:2' }] });
      expect(res.status).toBe(400);
      expect(await directory.peek('s:2')).toBeUndefined();
    }
  });
});
