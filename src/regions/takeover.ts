// `swipe-authorizer region-takeover`: this region takes over the shoppers of a region
// lost for good (docs/regions.md "Losing a region"). From the lost region's Postgres
// (its CloudNativePG replica cluster here, promoted) it imports trips, cards,
// authorizations and ledger rows (takeoverImport.ts), records the lost persister's
// last WAL position per partition and, when the lost Redis can still be read, the
// WAL entries that never reached Postgres (takeoverWal.ts), rebuilds this region's
// Redis for those shoppers (the hydrate of a Redis loss) and announces them.
// Output: one JSON report on stdout; exit 0 when all is in, 3 when rows collided.
import { writeFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { createOrm, knexOf, type Orm } from '../db/orm.js';
import { Hydrator } from '../persister/hydrate.js';
import { connectRedis, createRedisClient } from '../redis/client.js';
import { partitionOf } from '../redis/keys.js';
import { announceTakenOver } from './announce.js';
import { type Collision, importRows, type TableResult } from './takeoverImport.js';
import {
  countDeadLetters,
  type PartitionOffset,
  readOffsets,
  readUnpersisted,
  type UnpersistedEntry,
} from './takeoverWal.js';
import type { Knex } from '@mikro-orm/postgresql';

export class TakeoverUsageError extends Error {}

export interface TakeoverOptions {
  readonly fromRegion: string;
  readonly replicaUrl: string;
  readonly lostRedisUrl: string | undefined;
  readonly lostRedisPrefix: string;
  readonly out: string | undefined;
}

export interface TakeoverReport {
  readonly fromRegion: string;
  readonly toRegion: string;
  readonly tables: Record<string, TableResult>;
  readonly collisions: { count: number; listed: Collision[] };
  readonly shoppersTakenOver: number;
  readonly shoppersAnnounced: number;
  readonly hydratedPartitions: number[];
  readonly wal: {
    readonly partitions: {
      partition: number;
      lastStreamId: string;
      lastWalPos: string;
      unpersisted: number | null;
    }[];
    /** null: the lost Redis was not given or not readable, so how many is unknown. */
    readonly unpersistedTotal: number | null;
    readonly unpersistedTruncated: boolean;
    readonly unpersistedAuthorizations: UnpersistedEntry[];
    readonly deadLetters: number;
  };
}

const NAME = /^[a-z][a-z0-9-]{0,31}$/;
/** Authorizations listed in the report (all are recorded in region_takeover_unpersisted). */
const LISTED_MAX = 1_000;
/** Shoppers per recording page. */
const SHOPPER_PAGE = 1_000;

export function parseTakeoverArgs(args: string[], config: Config): TakeoverOptions {
  const v = new Map<string, string>();
  for (let i = 0; i < args.length; i += 2) {
    const k = args[i] as string;
    const val = args[i + 1];
    if (!['--from-region', '--replica-url', '--lost-redis-url', '--lost-redis-prefix', '--out'].includes(k))
      throw new TakeoverUsageError(`unknown argument ${k}`);
    if (val === undefined) throw new TakeoverUsageError(`${k} needs a value`);
    v.set(k, val);
  }
  const fromRegion = v.get('--from-region') ?? '';
  if (!NAME.test(fromRegion)) throw new TakeoverUsageError('--from-region must name the lost region');
  if (fromRegion === config.regions.region) throw new TakeoverUsageError('--from-region is this region');
  const replicaUrl = v.get('--replica-url') ?? '';
  if (!/^postgres(ql)?:\/\//.test(replicaUrl))
    throw new TakeoverUsageError('--replica-url must be postgres://…');
  const lostRedisUrl = v.get('--lost-redis-url');
  if (lostRedisUrl !== undefined && !/^rediss?:\/\//.test(lostRedisUrl))
    throw new TakeoverUsageError('--lost-redis-url must be redis://… or rediss://…');
  const lostRedisPrefix = v.get('--lost-redis-prefix') ?? config.redisPrefix;
  return { fromRegion, replicaUrl, lostRedisUrl, lostRedisPrefix, out: v.get('--out') };
}

/** Both regions must partition shoppers alike, or hydrate would put keys where no one reads them. */
async function checkPartitioning(replica: Knex, partitions: number): Promise<void> {
  const res = (await replica.raw(
    `select distinct on (partition) partition, shopper_id from trips order by partition, shopper_id`,
  )) as { rows: { partition: number; shopper_id: string }[] };
  for (const r of res.rows) {
    if (partitionOf(r.shopper_id, partitions) !== r.partition)
      throw new Error(
        `the lost region's PARTITIONS differs from this region's (${partitions}): set the same value first`,
      );
  }
}

async function recordWal(
  local: Knex,
  fromRegion: string,
  offsets: PartitionOffset[],
  entries: UnpersistedEntry[],
  nowMs: number,
): Promise<void> {
  await local.raw(
    `insert into region_takeover_offsets (from_region, partition, stream_id, wal_pos, events_total, unpersisted, taken_ms)
     select ?, x.partition, x."streamId", x."walPos", x."eventsTotal", x.unpersisted, ?
       from json_to_recordset(?::json) as x(partition int, "streamId" text, "walPos" text, "eventsTotal" bigint, unpersisted int)
     on conflict (from_region, partition) do update
        -- Runs over several copies (one per Redis Cluster node) each see some partitions' streams.
        set unpersisted = greatest(excluded.unpersisted, region_takeover_offsets.unpersisted)`,
    [fromRegion, nowMs, JSON.stringify(offsets)],
  );
  for (let i = 0; i < entries.length; i += SHOPPER_PAGE) {
    await local.raw(
      `insert into region_takeover_unpersisted (from_region, event_id, partition, stream_id, type, shopper_id,
              transaction_id, authorization_id, decision, amount_cents, error)
       select ?, x."eventId", x.partition, x."streamId", x.type, x."shopperId", x."transactionId",
              x."authorizationId", x.decision, x."amountCents", x.error
         from json_to_recordset(?::json) as x("eventId" text, partition int, "streamId" text, type text,
              "shopperId" text, "transactionId" text, "authorizationId" text, decision text, "amountCents" bigint, error text)
       on conflict do nothing`,
      [fromRegion, JSON.stringify(entries.slice(i, i + SHOPPER_PAGE))],
    );
  }
}

/** Records the lost region's shoppers as taken over (those whose rows collided aside) and announces them. */
async function recordShoppers(
  replica: Knex,
  local: Knex,
  fromRegion: string,
  collided: Set<string>,
  nowMs: number,
  announce: (ids: readonly string[]) => Promise<number>,
): Promise<{ taken: number; announced: number }> {
  let after = '';
  let taken = 0;
  let announced = 0;
  for (;;) {
    const res = (await replica.raw(
      `select shopper_id from (select shopper_id from trips union select shopper_id from processor_cards) s
        where shopper_id > ? order by shopper_id limit ?`,
      [after, SHOPPER_PAGE],
    )) as { rows: { shopper_id: string }[] };
    const ids = res.rows.map((r) => r.shopper_id).filter((s) => !collided.has(s));
    await local.raw(
      `insert into region_takeover_shoppers (shopper_id, from_region, taken_ms)
       select s, ?, ? from unnest(?::text[]) s on conflict do nothing`,
      [fromRegion, nowMs, ids],
    );
    taken += ids.length;
    announced += await announce(ids);
    const last = res.rows.at(-1);
    if (last === undefined || res.rows.length < SHOPPER_PAGE) return { taken, announced };
    after = last.shopper_id;
  }
}

/** Rebuilds this region's Redis for the partitions the lost region had data in (write-if-absent). */
async function hydrateTakenOver(config: Config, logger: Logger, orm: Orm, replica: Knex): Promise<number[]> {
  const res = (await replica.raw(
    `select partition from trips union select partition from processor_cards order by 1`,
  )) as { rows: { partition: number }[] };
  const client = createRedisClient(config, { name: 'takeover', commandTimeoutMs: 30_000 });
  try {
    await connectRedis(client);
    const hydrator = new Hydrator({ config, orm, client, logger });
    for (const r of res.rows) await hydrator.hydratePartition(r.partition);
    return res.rows.map((r) => r.partition);
  } finally {
    client.disconnect();
  }
}

async function accountWal(replica: Knex, o: TakeoverOptions, partitions: number, logger: Logger) {
  const offsets = await readOffsets(replica, partitions);
  let entries: UnpersistedEntry[] = [];
  let truncated = false;
  if (o.lostRedisUrl !== undefined) {
    try {
      ({ entries, truncated } = await readUnpersisted(o.lostRedisUrl, o.lostRedisPrefix, offsets));
    } catch (err) {
      // The lost Redis is usually gone with its region: the count stays unknown (null).
      for (const off of offsets) off.unpersisted = null;
      logger.warn(
        { err: (err as Error).message },
        'lost region Redis not readable: unpersisted entries unknown',
      );
    }
  }
  return { offsets, entries, truncated, deadLetters: await countDeadLetters(replica) };
}

/** The whole takeover; every step is idempotent, so a failed run is simply run again. */
export async function runTakeover(
  config: Config,
  logger: Logger,
  o: TakeoverOptions,
): Promise<TakeoverReport> {
  const replicaOrm = await createOrm({ databaseUrl: o.replicaUrl, poolMax: 2, statementTimeoutMs: 120_000 });
  const localOrm = await createOrm({
    databaseUrl: config.databaseUrl,
    poolMax: 2,
    statementTimeoutMs: 120_000,
  });
  try {
    const replica = knexOf(replicaOrm);
    const local = knexOf(localOrm);
    await checkPartitioning(replica, config.partitions);
    const nowMs = Date.now();
    const imported = await importRows(replica, local, o.fromRegion);
    const wal = await accountWal(replica, o, config.partitions, logger);
    await recordWal(local, o.fromRegion, wal.offsets, wal.entries, nowMs);
    const announce = (ids: readonly string[]) => announceTakenOver(config, logger, replica, ids);
    const shoppers = await recordShoppers(
      replica,
      local,
      o.fromRegion,
      imported.collidedShoppers,
      nowMs,
      announce,
    );
    const hydratedPartitions = await hydrateTakenOver(config, logger, localOrm, replica);
    const known = wal.offsets.every((x) => x.unpersisted !== null);
    return {
      fromRegion: o.fromRegion,
      toRegion: config.regions.region,
      tables: imported.tables,
      collisions: {
        count: Object.values(imported.tables).reduce((n, t) => n + t.collisions, 0),
        listed: imported.collisions,
      },
      shoppersTakenOver: shoppers.taken,
      shoppersAnnounced: shoppers.announced,
      hydratedPartitions,
      wal: {
        partitions: wal.offsets.map((x) => ({
          partition: x.partition,
          lastStreamId: x.streamId,
          lastWalPos: x.walPos,
          unpersisted: x.unpersisted,
        })),
        unpersistedTotal: known ? wal.entries.length : null,
        unpersistedTruncated: wal.truncated,
        unpersistedAuthorizations: wal.entries
          .filter((e) => e.type === 'authorization.decided' || e.type === 'failopen.replayed')
          .slice(0, LISTED_MAX),
        deadLetters: wal.deadLetters,
      },
    };
  } finally {
    await replicaOrm.close(true);
    await localOrm.close(true);
  }
}

/** `region-takeover`: the report on stdout (and --out); exit 3 when rows collided (imported apart from them). */
export async function takeoverCommand(config: Config, logger: Logger, args: string[]): Promise<void> {
  const options = parseTakeoverArgs(args, config);
  const report = await runTakeover(config, logger, options);
  const text = `${JSON.stringify(report, null, 2)}\n`;
  if (options.out !== undefined) writeFileSync(options.out, text);
  process.stdout.write(text);
  if (report.collisions.count > 0) {
    logger.error({ collisions: report.collisions.count }, 'rows collided: not imported, see the report');
    process.exitCode = 3;
  }
}
