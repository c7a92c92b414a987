// The regions of one api process (CONTRACT §8, docs/regions.md): links to the peers,
// the directory, the seam around every route, the internal endpoints, the sender of
// fail-open approvals to their home region, and announcements of new homes.
import type { Config } from '../config/config.js';
import type { Route } from '../http/server.js';
import type { Logger } from '../observability/logger.js';
import { type Metrics, zeroRegionSeries } from '../observability/metrics.js';
import type { RedisClient } from '../redis/client.js';
import { type FailOpenApproval, replayFailOpen } from '../redis/commands.js';
import { REPLAY_DEFER_MAX_MS } from '../failopen/replayer.js';
import type { Keys } from '../redis/keys.js';
import type { ReplayResult } from '../redis/results.js';
import type { ScriptRunner } from '../redis/scripts.js';
import { signForward } from './channel.js';
import { Directory, type DirectoryStore, type Home, type HomeKey, shopperKey } from './directory.js';
import { ANNOUNCE_KEYS_MAX, internalRoutes } from './internal.js';
import { PeerLink, type PeerReply } from './peerLink.js';
import { withRegionSeam } from './routing.js';

/** How often each peer's /healthz is probed (region_peer_up between forwards). */
export const PEER_PROBE_INTERVAL_MS = 5000;
/** How long a region keeps a learned home in its Redis: a trip's life and then some. */
export const DIRECTORY_TTL_S = 7 * 24 * 3600;
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
  announceHome(region: string, keys: readonly AnnouncedKey[]): Promise<string[]>;
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
  const directory = new Directory(askPeers(config, links, metrics), redisStore(deps), (n) =>
    metrics.regionDirectoryEntries.set(n),
  );
  const probes = startProbes(links, metrics);
  const retries = { pending: 0, stopped: false };
  const announce = (keys: readonly AnnouncedKey[]): void => {
    if (keys.length > 0) announceWithRetries(deps, links, config.regions.region, keys, 0, retries);
  };
  const seam = { config, logger, metrics, directory, links, announce };
  return {
    wrap: (route) => withRegionSeam(seam, route),
    routes: internalRoutes({ ...deps, directory }),
    directory,
    sendHome: (entry) => sendHome(deps, links, directory, entry),
    announceHome: (region, keys) => announceTo(deps, links, region, keys),
    stop() {
      retries.stopped = true;
      clearInterval(probes);
      for (const link of links.values()) link.close();
    },
  };
}

/** The region's copy of the directory: one key per home, TTL DIRECTORY_TTL_S, each call bounded. */
function redisStore(deps: RegionsDeps): DirectoryStore {
  const { config, redis } = deps;
  const keyOf = (key: HomeKey): string => `${config.redisPrefix}:region-home:${key}`;
  const bounded = <T>(call: Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error('directory read timed out')),
        config.regions.forwardTimeoutMs,
      );
      call.then(resolve, reject).finally(() => clearTimeout(timer));
    });
  return {
    async get(key) {
      const raw = await bounded(redis.get(keyOf(key)));
      if (raw === null) return undefined;
      const v = JSON.parse(raw) as { r: string; s?: string };
      return { region: v.r, ...(v.s === undefined ? {} : { shopperId: v.s }) };
    },
    async set(key, home) {
      const value = JSON.stringify({
        r: home.region,
        ...(home.shopperId === undefined ? {} : { s: home.shopperId }),
      });
      await bounded(redis.set(keyOf(key), value, 'EX', DIRECTORY_TTL_S)).catch(() => undefined);
    },
    async del(key) {
      await bounded(redis.del(keyOf(key))).catch(() => undefined);
    },
  };
}

/** Where a journaled approval goes now: here when its shopper lives here now (a takeover), else the directory's home. */
async function currentHome(
  deps: RegionsDeps,
  directory: Directory,
  entry: FailOpenApproval,
): Promise<string> {
  const p = deps.keys.partition(entry.shopper);
  if ((await deps.redis.hget(deps.keys.shopper(p, entry.shopper), 'trip')) !== null)
    return deps.config.regions.region;
  return (await directory.lookup(shopperKey(entry.shopper)))?.region ?? entry.home ?? '';
}

async function sendHome(
  deps: RegionsDeps,
  links: ReadonlyMap<string, PeerLink>,
  directory: Directory,
  entry: FailOpenApproval,
): Promise<ReplayResult> {
  const peer = await currentHome(deps, directory, entry);
  if (peer === deps.config.regions.region) {
    const nowMs = Date.now();
    return replayFailOpen(deps, entry, nowMs, nowMs - entry.at < REPLAY_DEFER_MAX_MS);
  }
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
 * shoppers. In batches of ANNOUNCE_KEYS_MAX; returns the peers that did not take every batch
 * (a peer that missed it asks on its next "not here": docs/regions.md, "Directory").
 */
async function announceTo(
  deps: Pick<RegionsDeps, 'config' | 'logger'>,
  links: ReadonlyMap<string, PeerLink>,
  region: string,
  keys: readonly AnnouncedKey[],
): Promise<string[]> {
  const failed = new Set<string>();
  for (let i = 0; i < keys.length; i += ANNOUNCE_KEYS_MAX) {
    const batch = keys.slice(i, i + ANNOUNCE_KEYS_MAX).map((k) => ({
      key: k.key,
      ...(k.shopperId === undefined ? {} : { shopper_id: k.shopperId }),
    }));
    const body = Buffer.from(JSON.stringify({ region, keys: batch }));
    const path = '/internal/regions/announce';
    await Promise.all(
      [...links.values()].map(async (link) => {
        try {
          const reply = await signedCall(deps.config, link, 'POST', path, body, BACKGROUND_TIMEOUT_MS);
          if (reply.status !== 200) throw new Error(`answered ${reply.status}`);
        } catch (err) {
          failed.add(link.name);
          deps.logger.warn(
            { peer: link.name, err: (err as Error).message },
            'home announcement not delivered',
          );
        }
      }),
    );
  }
  return [...failed];
}

/** A peer that missed an announcement gets it again after these delays (then it asks on a miss). */
const ANNOUNCE_RETRY_DELAYS_MS = [1000, 5000, 30_000];
/** Announcements waiting for a retry, at most (beyond: dropped, the peer asks on a miss). */
const ANNOUNCE_RETRIES_MAX = 10_000;

/** announceTo, then again to the peers that missed it, a bounded number of times. */
function announceWithRetries(
  deps: Pick<RegionsDeps, 'config' | 'logger'>,
  links: ReadonlyMap<string, PeerLink>,
  region: string,
  keys: readonly AnnouncedKey[],
  attempt: number,
  retries: { pending: number; stopped: boolean },
): void {
  void announceTo(deps, links, region, keys).then((failed) => {
    const delay = ANNOUNCE_RETRY_DELAYS_MS[attempt];
    if (failed.length === 0 || delay === undefined || retries.pending >= ANNOUNCE_RETRIES_MAX) return;
    retries.pending++;
    const missed = new Map([...links].filter(([name]) => failed.includes(name)));
    setTimeout(() => {
      retries.pending--;
      if (!retries.stopped) announceWithRetries(deps, missed, region, keys, attempt + 1, retries);
    }, delay).unref();
  });
}

/**
 * For a process without a running api (the stage 4 `region-takeover` command): tells every
 * peer of REGION_PEERS that `keys` (shopperKey / cardKey of src/regions/directory.ts) now
 * live in `region`, and returns the peers that did not take it (to retry or report).
 */
export async function announceHome(
  config: Config,
  logger: Logger,
  region: string,
  keys: readonly AnnouncedKey[],
): Promise<string[]> {
  const links = new Map([...config.regions.peers].map(([name, url]) => [name, new PeerLink(name, url)]));
  try {
    return await announceTo({ config, logger }, links, region, keys);
  } finally {
    for (const link of links.values()) link.close();
  }
}
