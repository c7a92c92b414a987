// ioredis clients with every option that matters set explicitly (STYLE: do not
// trust library defaults). Request-path clients fail fast: no offline queue,
// no per-request retries, a hard command timeout; reconnects back off so a
// Redis outage does not turn into a reconnect storm.
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Config } from '../config/config.js';

export type RedisClient = Redis | Cluster;

export interface ClientRole {
  /** Deadline per command; request path: DECISION_TIMEOUT_MS. Background work: longer. */
  readonly commandTimeoutMs: number | undefined;
  /** Client name shown in CLIENT LIST. */
  readonly name: string;
}

/** Capped exponential backoff with jitter: 50 ms .. 2 s. */
export function reconnectDelayMs(attempt: number): number {
  const base = Math.min(2000, 50 * 2 ** Math.min(attempt, 6));
  return Math.round(base / 2 + Math.random() * (base / 2));
}

/**
 * AUTH and TLS from config (REDIS_USERNAME, REDIS_PASSWORD, REDIS_TLS,
 * REDIS_TLS_CA_FILE, REDIS_TLS_SERVERNAME). Set on the standalone client and
 * on every Cluster node (redisOptions). A key left out keeps the URL's value.
 */
export function securityOptions(config: Config): Pick<RedisOptions, 'username' | 'password' | 'tls'> {
  const out: Pick<RedisOptions, 'username' | 'password' | 'tls'> = {};
  if (config.redisUsername !== undefined) out.username = config.redisUsername;
  if (config.redisPassword !== undefined) out.password = config.redisPassword;
  if (config.redisTls) {
    const tls: ConnectionOptions = { rejectUnauthorized: true };
    if (config.redisTlsCaFile !== undefined) tls.ca = readFileSync(config.redisTlsCaFile);
    if (config.redisTlsServername !== undefined) tls.servername = config.redisTlsServername;
    out.tls = tls;
  }
  return out;
}

function commonOptions(config: Config, role: ClientRole): RedisOptions {
  return {
    ...securityOptions(config),
    connectionName: role.name,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: role.commandTimeoutMs,
    connectTimeout: 2000,
    enableAutoPipelining: false,
    enableReadyCheck: true,
    lazyConnect: true,
    keepAlive: 10_000,
    noDelay: true,
    retryStrategy: reconnectDelayMs,
  };
}

export function createRedisClient(config: Config, role: ClientRole): RedisClient {
  if (config.redisClusterNodes.length > 0) {
    const nodes = config.redisClusterNodes.map((n) => {
      const idx = n.lastIndexOf(':');
      return { host: n.slice(0, idx), port: Number(n.slice(idx + 1)) };
    });
    const { retryStrategy: _unused, enableOfflineQueue: _q, ...redisOptions } = commonOptions(config, role);
    return new Cluster(nodes, {
      redisOptions,
      enableOfflineQueue: false,
      enableReadyCheck: true,
      lazyConnect: true,
      scaleReads: 'master',
      maxRedirections: 4,
      retryDelayOnMoved: 0,
      retryDelayOnFailover: 100,
      retryDelayOnClusterDown: 100,
      retryDelayOnTryAgain: 100,
      slotsRefreshTimeout: 2000,
      clusterRetryStrategy: reconnectDelayMs,
      // TLS: connect by the name the node announces (its certificate's), not
      // by an address ioredis would otherwise resolve first.
      ...(config.redisTls ? { dnsLookup: keepHostname } : {}),
    });
  }
  return new Redis(config.redisUrl, commonOptions(config, role));
}

function keepHostname(hostname: string, callback: (err: null, address: string) => void): void {
  callback(null, hostname);
}

/** Connects and waits until the client is ready, or throws after timeoutMs. */
export async function connectRedis(client: RedisClient, timeoutMs = 5000): Promise<void> {
  if (client.status === 'ready') return;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Redis not ready within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([client.connect(), deadline]);
  } finally {
    clearTimeout(timer);
  }
}
