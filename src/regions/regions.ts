// The regions of one api process (CONTRACT §8, docs/regions.md): links to the peers,
// the directory, the seam around every route, the internal endpoints, the sender of
// fail-open approvals to their home region, and announcements of new homes.
import type { Config } from '../config/config.js';
import type { Route } from '../http/server.js';
import type { Logger } from '../observability/logger.js';
import { type Metrics, zeroRegionSeries } from '../observability/metrics.js';
import type { RedisClient } from '../redis/client.js';
import type { FailOpenApproval } from '../redis/commands.js';
import type { Keys } from '../redis/keys.js';
import type { ReplayResult } from '../redis/results.js';
import type { ScriptRunner } from '../redis/scripts.js';
import { signForward } from './channel.js';
import { Directory, type Home, type HomeKey } from './directory.js';
import { ANNOUNCE_KEYS_MAX, internalRoutes } from './internal.js';
import { PeerLink, type PeerReply } from './peerLink.js';
import { withRegionSeam } from './routing.js';

/** How often each peer's /healthz is probed (region_peer_up between forwards). */
export const PEER_PROBE_INTERVAL_MS = 5000;
/** Deadline of a replay or an announcement sent to a peer (background work, not a swipe). */
const BACKGROUND_TIMEOUT_MS = 2000;

export interface RegionsDeps {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly keys: Keys;
  readonly redis: RedisClient;
  readonly scripts: ScriptRunner;
}

export interface Regions {
  /** The route with the region seam in front of it. */
  wrap(route: Route): Route;
  /** The internal channel's endpoints. */
  readonly routes: readonly Route[];
  /** Sends a fail-open approval to its home region's replay endpoint; throws when it did not apply. */
  sendHome(entry: FailOpenApproval): Promise<ReplayResult>;
  /** Tells every peer that these keys live in `region` (this one, or one taken over). */
  announceHome(region: string, keys: readonly AnnouncedKey[]): Promise<void>;
  readonly directory: Directory;
  stop(): void;
}

export interface AnnouncedKey {
  readonly key: HomeKey;
  readonly shopperId?: string;
}

/** One signed request to a peer (channel signature over method, path and body). */
function signedCall(
  config: Config,
  link: PeerLink,
  method: string,
  path: string,
  body: Buffer,
  timeoutMs: number,
): Promise<PeerReply> {
  const headers = {
    'content-type': 'application/json',
    ...signForward(
      config.regions.secrets,
      config.regions.region,
      { method, path, body },
      Math.floor(Date.now() / 1000),
    ),
  };
  return link.send({ method, path, headers, body, timeoutMs });
}

/** Asks every peer at once; the first that says "home" wins. */
function askPeers(config: Config, links: ReadonlyMap<string, PeerLink>, metrics: Metrics) {
  return async (key: HomeKey): Promise<Home | undefined> => {
    const [kind, a, b] = key.split(':');
    const path =
      kind === 's' ? `/internal/regions/home/shopper/${a}` : `/internal/regions/home/card/${a}/${b}`;
    const asks = [...links.values()].map(async (link): Promise<Home> => {
      const reply = await signedCall(
        config,
        link,
        'GET',
        path,
        Buffer.alloc(0),
        config.regions.forwardTimeoutMs,
      );
      metrics.regionPeerUp.set({ peer: link.name }, 1);
      const answer = JSON.parse(reply.body.toString('utf8')) as { home?: boolean; shopper_id?: string };
      if (reply.status !== 200 || answer.home !== true) throw new Error('not home');
      return {
        region: link.name,
        ...(answer.shopper_id === undefined ? {} : { shopperId: answer.shopper_id }),
      };
    });
    try {
      return await Promise.any(asks);
    } catch {
      return undefined;
    }
  };
}

function startProbes(links: ReadonlyMap<string, PeerLink>, metrics: Metrics): NodeJS.Timeout {
  const probe = (): void => {
    for (const link of links.values())
      link
        .send({
          method: 'GET',
          path: '/healthz',
          headers: {},
          body: Buffer.alloc(0),
          timeoutMs: BACKGROUND_TIMEOUT_MS,
        })
        .then(
          (r) => metrics.regionPeerUp.set({ peer: link.name }, r.status === 200 ? 1 : 0),
          () => metrics.regionPeerUp.set({ peer: link.name }, 0),
        );
  };
  probe();
  const timer = setInterval(probe, PEER_PROBE_INTERVAL_MS);
  timer.unref();
  return timer;
}

export function createRegions(deps: RegionsDeps): Regions | undefined {
  const { config, metrics, logger } = deps;
  if (config.regions.peers.size === 0) return undefined;
  const links = new Map([...config.regions.peers].map(([name, url]) => [name, new PeerLink(name, url)]));
  zeroRegionSeries(metrics, links.keys());
  for (const name of links.keys()) metrics.regionPeerUp.set({ peer: name }, 0);
  const directory = new Directory(askPeers(config, links, metrics), (n) =>
    metrics.regionDirectoryEntries.set(n),
  );
  const probes = startProbes(links, metrics);
  const announce = (keys: readonly AnnouncedKey[]): void => {
    if (keys.length > 0) void announceHome(deps, links, config.regions.region, keys);
  };
  const seam = { config, logger, metrics, directory, links, announce };
  return {
    wrap: (route) => withRegionSeam(seam, route),
    routes: internalRoutes({ ...deps, directory }),
    directory,
    sendHome: (entry) => sendHome(deps, links, entry),
    announceHome: (region, keys) => announceHome(deps, links, region, keys),
    stop() {
      clearInterval(probes);
      for (const link of links.values()) link.close();
    },
  };
}

async function sendHome(
  deps: RegionsDeps,
  links: ReadonlyMap<string, PeerLink>,
  entry: FailOpenApproval,
): Promise<ReplayResult> {
  const peer = entry.home ?? '';
  const link = links.get(peer);
  if (link === undefined) throw new Error(`home region ${peer} is not among REGION_PEERS`);
  const body = Buffer.from(JSON.stringify(entry));
  try {
    const reply = await signedCall(
      deps.config,
      link,
      'POST',
      '/internal/regions/replay',
      body,
      BACKGROUND_TIMEOUT_MS,
    );
    if (reply.status !== 200)
      throw new Error(`region ${peer} answered ${reply.status}: ${reply.body.toString('utf8')}`);
    const result = JSON.parse(reply.body.toString('utf8')) as ReplayResult;
    deps.metrics.regionFailopenReplays.inc({ peer, outcome: 'applied' });
    return result;
  } catch (err) {
    deps.metrics.regionFailopenReplays.inc({ peer, outcome: 'error' });
    throw err;
  }
}

/**
 * Tells every peer "these keys live in `region`": after this region created a trip or
 * registered a card, and after a takeover (stage 4) made this region the home of another's
 * shoppers. Best effort, in batches of ANNOUNCE_KEYS_MAX: a peer that missed it asks on its
 * next "not here" (docs/regions.md, "Directory").
 */
async function announceHome(
  deps: RegionsDeps,
  links: ReadonlyMap<string, PeerLink>,
  region: string,
  keys: readonly AnnouncedKey[],
): Promise<void> {
  for (let i = 0; i < keys.length; i += ANNOUNCE_KEYS_MAX) {
    const batch = keys.slice(i, i + ANNOUNCE_KEYS_MAX).map((k) => ({
      key: k.key,
      ...(k.shopperId === undefined ? {} : { shopper_id: k.shopperId }),
    }));
    const body = Buffer.from(JSON.stringify({ region, keys: batch }));
    await Promise.all(
      [...links.values()].map((link) =>
        signedCall(
          deps.config,
          link,
          'POST',
          '/internal/regions/announce',
          body,
          BACKGROUND_TIMEOUT_MS,
        ).catch((err: unknown) =>
          deps.logger.warn(
            { peer: link.name, err: (err as Error).message },
            'home announcement not delivered',
          ),
        ),
      ),
    );
  }
}
