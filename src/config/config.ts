// Configuration: read once from the environment, each variable by its name in
// loadConfig() or one of the section readers it calls, with a default and bounds
// (variables they do not name are not read), checked together (every problem
// reported at once, limits that must fit together asserted), then frozen. A limit's
// unit is the last word of its name (the older MAX_X names are read as aliases).
import { loadProcessorConfig, type ProcessorConfig } from '../processors/config.js';
import { loadRegionConfig, type RegionConfig } from '../regions/config.js';

export interface Config {
  readonly env: 'production' | 'development' | 'test';
  readonly host: string;
  readonly port: number;
  readonly metricsPort: number;
  readonly redisUrl: string;
  /** host:port pairs; non-empty means Redis Cluster mode. */
  readonly redisClusterNodes: readonly string[];
  readonly redisPrefix: string;
  /** Redis ACL user and AUTH password (REDIS_USERNAME, REDIS_PASSWORD); win over the URL's; Cluster: every node. */
  readonly redisUsername: string | undefined;
  readonly redisPassword: string | undefined;
  /** TLS to Redis (REDIS_TLS; on by default for a rediss:// URL); CA bundle file and SNI name, both optional. */
  readonly redisTls: boolean;
  readonly redisTlsCaFile: string | undefined;
  readonly redisTlsServername: string | undefined;
  readonly databaseUrl: string;
  readonly signatureSecrets: readonly string[];
  readonly apiTokens: readonly string[];
  /** True when the fixed dev secret/token are in use because none were configured (dev only). */
  readonly generatedDevSecrets: boolean;
  readonly decisionTimeoutMs: number;
  readonly failopenEnabled: boolean;
  readonly failopenMaxCents: number;
  readonly failopenShopperMaxCents: number;
  readonly failopenWindowS: number;
  readonly failopenShoppersMax: number;
  readonly failopenJournalPath: string;
  readonly failopenJournalBytesMax: number;
  readonly partitions: number;
  readonly tripTtlS: number;
  readonly idempotencyTtlS: number;
  readonly authorizationTtlS: number;
  readonly signatureToleranceS: number;
  readonly maxDistanceM: number;
  readonly maxSwipesPerMinute: number;
  readonly maxOverpickBps: number;
  readonly maxPriceVarianceBps: number;
  readonly defaultTaxRateBps: number;
  readonly defaultToleranceBps: number;
  readonly defaultToleranceCents: number;
  readonly webhookBodyBytesMax: number;
  readonly tripBodyBytesMax: number;
  readonly tripItemsMax: number;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  readonly processorDeadlineMs: number;
  readonly holdExpiryS: number;
  readonly persisterBatchEventsMax: number;
  /** The api's swipe commands of one event-loop turn leave in one write (src/redis/coalesce.ts); off: it costs maximum throughput. */
  readonly redisCoalesceWrites: boolean;
  /**
   * authorizeSwipe writes its WAL event as a JSON array of values (format a1) instead of an
   * object: turn on only once every persister reads it (docs/deploy.md).
   */
  readonly walCompactPayload: boolean;
  /**
   * authorizeSwipe keeps a trip's velocity window in the trip hash (`vel`) instead of its :swipes
   * sorted set: turn off while a release that reads only the set still serves (docs/deploy.md).
   */
  readonly velocityInTripHash: boolean;
  /** Entries one Redis read may return: a big XREADGROUP blocks every swipe on that Redis while it runs. */
  readonly persisterReadEntriesMax: number;
  /** Concurrent write transactions per batch (partitions split by number); Postgres gets one backend each. */
  readonly persisterWriters: number;
  readonly persisterBlockMs: number;
  readonly persisterClaimIdleMs: number;
  readonly persisterDeliveriesMax: number;
  /** Lifetime of a persister's partition lease; renewed every third of it. */
  readonly persisterLeaseMs: number;
  /** Days an unknown-card swipe record is kept in Postgres (the persister prunes hourly). */
  readonly unknownCardRetentionDays: number;
  readonly shutdownGraceMs: number;
  /** Admission control (docs/failopen.md "Overload"): requests in flight at once; more are shed with 503. */
  readonly apiInflightRequestsMax: number;
  /** Body bytes held by in-flight requests (declared or read so far); more are shed with 503. */
  readonly apiQueuedBodyBytesMax: number;
  /** Event-loop stall above which new requests are shed with 503. */
  readonly overloadLoopLagMs: number;
  /** Extra wait, after the decision deadline, for a call slowed by this pod's own load (then 503). */
  readonly overloadWaitMs: number;
  /** A request whose body has not arrived whole by then is answered 408 and closed (it held an admission slot). */
  readonly apiBodyReadTimeoutMs: number;
  /** Readiness: scripts loaded and connections warmed on every master before /readyz says ready. */
  readonly readyWarmupTimeoutMs: number;
  /** How often readiness re-checks that every master has the scripts (failover, resharding). */
  readonly readyRecheckMs: number;
  /** Trip API maxima (CONTRACT §3 bounds): what a trip body may grant. */
  readonly tripToleranceBpsMax: number;
  readonly tripToleranceCentsMax: number;
  readonly tripHoldCentsMax: number;
  /** Over-pick allowed even with customer_approved. */
  readonly maxOverpickApprovedBps: number;
  /** Stand-in knowledge (src/failopen/standIn.ts): shoppers remembered, and for how long. */
  readonly standinShoppersMax: number;
  readonly standinTtlS: number;
  /** Fail-open may approve a shopper this pod has never seen decided by Redis. */
  readonly failopenUnseenShoppers: boolean;
  /** CONTRACT §7: Stripe, Marqeta and Lithic (src/processors/config.ts). */
  readonly processors: ProcessorConfig;
  /** CONTRACT §8: this region, its peers and the inter-region channel (src/regions/config.ts). */
  readonly regions: RegionConfig;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/** Reads and checks environment variables, collecting every problem (also used by src/processors/config.ts). */
export class Reader {
  readonly problems: string[] = [];
  constructor(private readonly env: Env) {}

  str(name: string, fallback: string): string {
    const v = this.env[name];
    return v === undefined || v === '' ? fallback : v;
  }

  /**
   * `alias`: the name a limit had before limit names were unified (unit last, `_MAX` last: e.g.
   * `SWIPES_PER_MINUTE_MAX` for `MAX_SWIPES_PER_MINUTE`); still read, so deployments keep
   * working. Both set to different values is a problem.
   */
  int(name: string, fallback: number, min: number, max: number, alias?: string): number {
    const current = this.env[name];
    const old = alias === undefined ? undefined : this.env[alias];
    if (current !== undefined && current !== '' && old !== undefined && old !== '' && current !== old) {
      this.problems.push(`${name} and its old name ${alias} disagree (${current} vs ${old}): set one`);
      return fallback;
    }
    const raw = current === undefined || current === '' ? old : current;
    if (raw !== current && alias !== undefined) name = alias;
    if (raw === undefined || raw === '') return fallback;
    if (!/^-?\d+$/.test(raw.trim())) {
      this.problems.push(`${name} must be an integer, got "${raw}"`);
      return fallback;
    }
    const n = Number(raw.trim());
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      this.problems.push(`${name} must be between ${min} and ${max}, got ${raw}`);
      return fallback;
    }
    return n;
  }

  bool(name: string, fallback: boolean): boolean {
    const raw = this.env[name];
    if (raw === undefined || raw === '') return fallback;
    const v = raw.trim().toLowerCase();
    if (['true', '1', 'yes', 'on'].includes(v)) return true;
    if (['false', '0', 'no', 'off'].includes(v)) return false;
    this.problems.push(`${name} must be true or false, got "${raw}"`);
    return fallback;
  }

  list(name: string): string[] {
    const raw = this.env[name];
    if (raw === undefined) return [];
    return raw
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s.length > 0);
  }

  oneOf<T extends string>(name: string, fallback: T, allowed: readonly T[]): T {
    const raw = this.env[name];
    if (raw === undefined || raw === '') return fallback;
    if ((allowed as readonly string[]).includes(raw)) return raw as T;
    this.problems.push(`${name} must be one of ${allowed.join(', ')}, got "${raw}"`);
    return fallback;
  }
}

const DAY_S = 86_400;
/** Used only outside production when nothing is configured; refused in production. */
export const DEV_SIGNATURE_SECRET = 'dev-signature-secret-not-for-production';
export const DEV_API_TOKEN = 'dev-api-token-not-for-production';

/** Parses and validates configuration. Throws ConfigError listing every problem at once. */
export function loadConfig(env: Env = process.env): Config {
  const r = new Reader(env);
  const envName = r.oneOf('NODE_ENV', 'development', ['production', 'development', 'test'] as const);
  const { signatureSecrets, apiTokens, generatedDevSecrets } = readSecrets(r, envName);
  const { redisPrefix, redisClusterNodes, redisUrl, databaseUrl, redisTls, redisTlsCaFile } = readStores(r);

  const config: Config = {
    env: envName,
    host: r.str('HOST', '0.0.0.0'),
    port: r.int('PORT', 8080, 0, 65_535),
    metricsPort: r.int('METRICS_PORT', 9464, 0, 65_535),
    redisUrl,
    redisClusterNodes,
    redisPrefix,
    redisUsername: r.str('REDIS_USERNAME', '') || undefined,
    redisPassword: r.str('REDIS_PASSWORD', '') || undefined,
    redisTls,
    redisTlsCaFile,
    redisTlsServername: r.str('REDIS_TLS_SERVERNAME', '') || undefined,
    databaseUrl,
    signatureSecrets,
    apiTokens,
    generatedDevSecrets,
    logLevel: r.oneOf('LOG_LEVEL', 'info', [
      'fatal',
      'error',
      'warn',
      'info',
      'debug',
      'trace',
      'silent',
    ] as const),
    ...decisionSettings(r),
    ...failopenSettings(r),
    ...tripApiLimits(r),
    ...apiLoadSettings(r),
    ...persisterSettings(r),
    processors: loadProcessorConfig(r),
    regions: loadRegionConfig(r),
  };

  checkLimitsFit(config, r.problems);
  if (r.problems.length > 0) throw new ConfigError(r.problems);
  return Object.freeze({
    ...config,
    redisClusterNodes: Object.freeze([...config.redisClusterNodes]),
    signatureSecrets: Object.freeze([...config.signatureSecrets]),
    apiTokens: Object.freeze([...config.apiTokens]),
  });
}

/** Webhook secrets and trip API tokens: required in production, fixed printed dev values otherwise. */
function readSecrets(
  r: Reader,
  envName: Config['env'],
): { signatureSecrets: string[]; apiTokens: string[]; generatedDevSecrets: boolean } {
  let signatureSecrets = r.list('SIGNATURE_SECRETS');
  let apiTokens = r.list('API_TOKENS');
  let generatedDevSecrets = false;
  if (envName === 'production') {
    if (signatureSecrets.length === 0) r.problems.push('SIGNATURE_SECRETS is required in production');
    if (apiTokens.length === 0) r.problems.push('API_TOKENS is required in production');
  } else {
    // Fixed, printed dev values so the README's curl example works as written.
    if (signatureSecrets.length === 0) {
      signatureSecrets = [DEV_SIGNATURE_SECRET];
      generatedDevSecrets = true;
    }
    if (apiTokens.length === 0) {
      apiTokens = [DEV_API_TOKEN];
      generatedDevSecrets = true;
    }
  }
  for (const s of signatureSecrets)
    if (s.length < 16) r.problems.push('each SIGNATURE_SECRETS entry must be >= 16 chars');
  for (const t of apiTokens) if (t.length < 16) r.problems.push('each API_TOKENS entry must be >= 16 chars');
  return { signatureSecrets, apiTokens, generatedDevSecrets };
}

/** Where Redis and Postgres are, and how to reach Redis. */
function readStores(r: Reader) {
  const redisPrefix = r.str('REDIS_PREFIX', 'sa');
  if (!/^[A-Za-z0-9_.-]{1,32}$/.test(redisPrefix)) {
    r.problems.push(
      'REDIS_PREFIX must be 1-32 chars of [A-Za-z0-9_.-] (no braces: the hash tag is added per key)',
    );
  }
  const redisClusterNodes = r.list('REDIS_CLUSTER_NODES');
  for (const n of redisClusterNodes) {
    if (!/^[^:\s]+:\d{1,5}$/.test(n)) r.problems.push(`REDIS_CLUSTER_NODES entry "${n}" must be host:port`);
  }
  const redisUrl = r.str('REDIS_URL', 'redis://127.0.0.1:6379');
  if (!/^rediss?:\/\//.test(redisUrl)) r.problems.push('REDIS_URL must start with redis:// or rediss://');
  const databaseUrl = r.str('DATABASE_URL', 'postgres://postgres@127.0.0.1:5432/postgres');
  if (!/^postgres(ql)?:\/\//.test(databaseUrl)) r.problems.push('DATABASE_URL must start with postgres://');

  const redisTls = r.bool('REDIS_TLS', redisUrl.startsWith('rediss://'));
  const redisTlsCaFile = r.str('REDIS_TLS_CA_FILE', '') || undefined;
  if (redisTlsCaFile !== undefined && !redisTls)
    r.problems.push('REDIS_TLS_CA_FILE is set but REDIS_TLS is off');
  return { redisPrefix, redisClusterNodes, redisUrl, databaseUrl, redisTls, redisTlsCaFile };
}

/** What a decision weighs: its deadline, partitions, key lifetimes and the swipe checks' limits. */
function decisionSettings(r: Reader) {
  return {
    decisionTimeoutMs: r.int('DECISION_TIMEOUT_MS', 25, 1, 900),
    redisCoalesceWrites: r.bool('REDIS_COALESCE_WRITES', false),
    walCompactPayload: r.bool('WAL_COMPACT_PAYLOAD', true),
    velocityInTripHash: r.bool('VELOCITY_IN_TRIP_HASH', true),
    partitions: r.int('PARTITIONS', 64, 1, 16_384),
    tripTtlS: r.int('TRIP_TTL_S', 43_200, 1, 30 * DAY_S),
    idempotencyTtlS: r.int('IDEMPOTENCY_TTL_S', 3 * DAY_S, 3 * DAY_S, 90 * DAY_S),
    authorizationTtlS: r.int('AUTHORIZATION_TTL_S', 8 * DAY_S, 3 * DAY_S, 90 * DAY_S),
    signatureToleranceS: r.int('SIGNATURE_TOLERANCE_S', 300, 1, 3600),
    maxDistanceM: r.int('DISTANCE_M_MAX', 2000, 1, 20_000_000, 'MAX_DISTANCE_M'),
    maxSwipesPerMinute: r.int('SWIPES_PER_MINUTE_MAX', 10, 1, 100_000, 'MAX_SWIPES_PER_MINUTE'),
    maxOverpickBps: r.int('OVERPICK_BPS_MAX', 1000, 0, 100_000, 'MAX_OVERPICK_BPS'),
    maxPriceVarianceBps: r.int('PRICE_VARIANCE_BPS_MAX', 2500, 0, 100_000, 'MAX_PRICE_VARIANCE_BPS'),
    maxOverpickApprovedBps: r.int(
      'OVERPICK_APPROVED_BPS_MAX',
      10_000,
      0,
      100_000,
      'MAX_OVERPICK_APPROVED_BPS',
    ),
    defaultTaxRateBps: r.int('DEFAULT_TAX_RATE_BPS', 0, 0, 10_000),
    defaultToleranceBps: r.int('DEFAULT_TOLERANCE_BPS', 500, 0, 10_000),
    defaultToleranceCents: r.int('DEFAULT_TOLERANCE_CENTS', 200, 0, 100_000_000),
    processorDeadlineMs: r.int('PROCESSOR_DEADLINE_MS', 1000, 100, 60_000),
    holdExpiryS: r.int('HOLD_EXPIRY_S', 7 * DAY_S, 60, 90 * DAY_S),
  };
}

/** The fail-open policy (docs/failopen.md): its caps, window, journal and stand-in knowledge. */
function failopenSettings(r: Reader) {
  return {
    failopenEnabled: r.bool('FAILOPEN_ENABLED', true),
    failopenMaxCents: r.int('FAILOPEN_MAX_CENTS', 10_000, 0, 100_000_000),
    failopenShopperMaxCents: r.int('FAILOPEN_SHOPPER_MAX_CENTS', 20_000, 0, 100_000_000),
    failopenWindowS: r.int('FAILOPEN_WINDOW_S', 600, 1, DAY_S),
    failopenShoppersMax: r.int('FAILOPEN_SHOPPERS_MAX', 100_000, 1, 10_000_000),
    failopenJournalPath: r.str('FAILOPEN_JOURNAL_PATH', '.journal/failopen.jsonl'),
    failopenJournalBytesMax: r.int('FAILOPEN_JOURNAL_BYTES_MAX', 64 * 1024 * 1024, 4096, 2 ** 40),
    standinShoppersMax: r.int('STANDIN_SHOPPERS_MAX', 100_000, 1, 10_000_000),
    standinTtlS: r.int('STANDIN_TTL_S', 600, 1, DAY_S),
    failopenUnseenShoppers: r.bool('FAILOPEN_UNSEEN_SHOPPERS', true),
  };
}

/** What the trip API accepts: body size, items, and the most a trip may ask for. */
function tripApiLimits(r: Reader) {
  return {
    tripBodyBytesMax: r.int('TRIP_BODY_BYTES_MAX', 256 * 1024, 1024, 4 * 1024 * 1024),
    tripItemsMax: r.int('TRIP_ITEMS_MAX', 500, 1, 5000),
    tripToleranceBpsMax: r.int('TRIP_TOLERANCE_BPS_MAX', 2000, 0, 10_000),
    tripToleranceCentsMax: r.int('TRIP_TOLERANCE_CENTS_MAX', 10_000, 0, 100_000_000),
    tripHoldCentsMax: r.int('TRIP_HOLD_CENTS_MAX', 5_000_000, 0, 100_000_000),
  };
}

/** The api pod's own bounds: webhook bodies, admission control, shutdown and readiness. */
function apiLoadSettings(r: Reader) {
  return {
    webhookBodyBytesMax: r.int('WEBHOOK_BODY_BYTES_MAX', 16 * 1024, 1024, 1024 * 1024),
    shutdownGraceMs: r.int('SHUTDOWN_GRACE_MS', 10_000, 0, 300_000),
    apiInflightRequestsMax: r.int('API_INFLIGHT_REQUESTS_MAX', 1024, 1, 1_000_000),
    apiQueuedBodyBytesMax: r.int('API_QUEUED_BODY_BYTES_MAX', 8 * 1024 * 1024, 1024, 2 ** 32),
    overloadLoopLagMs: r.int('OVERLOAD_LOOP_LAG_MS', 200, 1, 60_000),
    overloadWaitMs: r.int('OVERLOAD_WAIT_MS', 250, 0, 60_000),
    apiBodyReadTimeoutMs: r.int('API_BODY_READ_TIMEOUT_MS', 1000, 50, 60_000),
    readyWarmupTimeoutMs: r.int('READY_WARMUP_TIMEOUT_MS', 5000, 1, 600_000),
    readyRecheckMs: r.int('READY_RECHECK_MS', 5000, 100, 3_600_000),
  };
}

/** The persister's batch, read, lease and retry limits (docs/persister.md). */
function persisterSettings(r: Reader) {
  return {
    persisterBatchEventsMax: r.int('PERSISTER_BATCH_EVENTS_MAX', 10_000, 1, 10_000),
    persisterReadEntriesMax: r.int('PERSISTER_READ_ENTRIES_MAX', 500, 1, 10_000),
    persisterWriters: r.int('PERSISTER_WRITERS', 2, 1, 8),
    persisterBlockMs: r.int('PERSISTER_BLOCK_MS', 1000, 1, 60_000),
    persisterClaimIdleMs: r.int('PERSISTER_CLAIM_IDLE_MS', 30_000, 100, 3_600_000),
    persisterDeliveriesMax: r.int('PERSISTER_DELIVERIES_MAX', 5, 1, 1000),
    persisterLeaseMs: r.int('PERSISTER_LEASE_MS', 10_000, 300, 600_000),
    unknownCardRetentionDays: r.int('UNKNOWN_CARD_RETENTION_DAYS', 90, 1, 3650),
  };
}

/** Limits that must fit together (TigerBeetle's habit: assert at boot). */
function checkLimitsFit(config: Config, problems: string[]): void {
  if (config.decisionTimeoutMs >= config.processorDeadlineMs) {
    problems.push('DECISION_TIMEOUT_MS must be below PROCESSOR_DEADLINE_MS');
  }
  if (config.failopenShopperMaxCents < config.failopenMaxCents && config.failopenEnabled) {
    problems.push('FAILOPEN_SHOPPER_MAX_CENTS must be >= FAILOPEN_MAX_CENTS');
  }
  if (config.authorizationTtlS < config.idempotencyTtlS) {
    problems.push('AUTHORIZATION_TTL_S must be >= IDEMPOTENCY_TTL_S');
  }
  if (
    config.apiQueuedBodyBytesMax < config.webhookBodyBytesMax ||
    config.apiQueuedBodyBytesMax < config.tripBodyBytesMax
  ) {
    problems.push('API_QUEUED_BODY_BYTES_MAX must hold at least one webhook and one trip body');
  }
  if (config.defaultToleranceBps > config.tripToleranceBpsMax)
    problems.push('DEFAULT_TOLERANCE_BPS must be <= TRIP_TOLERANCE_BPS_MAX');
  if (config.defaultToleranceCents > config.tripToleranceCentsMax)
    problems.push('DEFAULT_TOLERANCE_CENTS must be <= TRIP_TOLERANCE_CENTS_MAX');
  if (config.maxOverpickApprovedBps < config.maxOverpickBps)
    problems.push('OVERPICK_APPROVED_BPS_MAX must be >= OVERPICK_BPS_MAX');
  if (config.port !== 0 && config.port === config.metricsPort)
    problems.push('PORT and METRICS_PORT must differ');
}
