// The parts a region-seam test builds around withRegionSeam: an in-process directory
// store, a request's headers, the native swipe route (a decline that says "not here", or
// the fail-open answer when the home is unreachable) and the seam's dependencies.
import type { Config } from '../../src/config/config.js';
import type { Request, RequestHeaders, Route } from '../../src/http/server.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import type { Directory, DirectoryStore, Home, HomeKey } from '../../src/regions/directory.js';
import type { PeerLink } from '../../src/regions/peerLink.js';
import type { SeamDeps } from '../../src/regions/routing.js';

/** A directory store in this process; `map` is the region's copy. */
export function mapStore(
  entries: Iterable<readonly [HomeKey, Home]> = [],
): DirectoryStore & { map: Map<HomeKey, Home> } {
  const map = new Map<HomeKey, Home>(entries);
  return {
    map,
    get: async (k) => map.get(k),
    set: async (k, h) => void map.set(k, h),
    del: async (k) => void map.delete(k),
  };
}

/** A request's headers: all empty but the JSON content type, and `o`. */
export function requestHeaders(o: Partial<RequestHeaders> = {}): RequestHeaders {
  return {
    contentType: 'application/json',
    contentLength: '',
    signature: '',
    idempotencyKey: '',
    authorization: '',
    traceparent: '',
    tracestate: '',
    requestId: '',
    extra: [],
    ...o,
  };
}

/** POST /v1/authorizations: UNKNOWN_SHOPPER here, the fail-open answer when the home is unreachable. */
export function swipeRoute(): Route {
  return {
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
}

/** Region `ra`'s seam with one peer, `rh`, over `link` (none without it); nothing is announced. */
export function seamDeps(
  regions: { secrets: readonly string[]; forwardTimeoutMs: number },
  directory: Directory,
  link: PeerLink | undefined,
): SeamDeps {
  return {
    config: { regions: { region: 'ra', ...regions } } as unknown as Config,
    logger: createLogger('silent'),
    metrics: createMetrics({ defaultMetrics: false }),
    directory,
    links: new Map(link === undefined ? [] : [['rh', link]]),
    announce: () => undefined,
  };
}
