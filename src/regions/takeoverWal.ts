// What a lost region's persister had written, and what it had not (`region-takeover`):
// the last WAL position per partition comes from the replica's stream_offsets (the
// persister's checkpoint, written in the same transaction as the rows). The entries
// after it lived only in the lost region's Redis: when that Redis (or a copy of its
// AOF/RDB) can still be read, they are listed; otherwise their number is unknown and
// reconciliation finds their settlements (`missing_after_takeover`).
import type { Knex } from '@mikro-orm/postgresql';
import { Redis } from 'ioredis';
import { parseEntry, rawEntry } from '../persister/events.js';
import { nextStreamId } from '../persister/walReader.js';
import { Keys } from '../redis/keys.js';

export interface PartitionOffset {
  readonly partition: number;
  /** Stream id of the last entry persisted ("-" when nothing of the partition was persisted). */
  readonly streamId: string;
  readonly walPos: string;
  readonly eventsTotal: number;
  /** Entries after streamId still in the lost Redis; null when it could not be read. */
  unpersisted: number | null;
}

export interface UnpersistedEntry {
  readonly partition: number;
  readonly streamId: string;
  readonly eventId: string;
  readonly type: string;
  readonly shopperId: string | null;
  readonly transactionId: string | null;
  readonly authorizationId: string | null;
  readonly decision: string | null;
  readonly amountCents: number | null;
  readonly error: string | null;
}

/** Entries read per XRANGE call, and in all (the report says when the cap was hit). */
const XRANGE_COUNT = 500;
export const UNPERSISTED_MAX = 100_000;

export async function readOffsets(replica: Knex, partitions: number): Promise<PartitionOffset[]> {
  const res = (await replica.raw(
    `select partition, stream_id, wal_pos, events_total::text as events_total from stream_offsets order by partition`,
  )) as { rows: { partition: number; stream_id: string; wal_pos: string; events_total: string }[] };
  const byPartition = new Map(res.rows.map((r) => [r.partition, r]));
  return Array.from({ length: partitions }, (_, p) => {
    const r = byPartition.get(p);
    return {
      partition: p,
      streamId: r?.stream_id ?? '-',
      walPos: r?.wal_pos ?? '',
      eventsTotal: Number(r?.events_total ?? 0),
      unpersisted: null,
    };
  });
}

export async function countDeadLetters(replica: Knex): Promise<number> {
  const res = (await replica.raw(`select count(*)::int as n from dead_letters`)) as { rows: { n: number }[] };
  return res.rows[0]?.n ?? 0;
}

/** What the report keeps of one WAL entry: enough for reconciliation to match a settlement line. */
function describe(partition: number, streamId: string, fields: string[] | null): UnpersistedEntry {
  const raw = rawEntry(partition, streamId, fields);
  const parsed = parseEntry(raw);
  const base = { partition, streamId, eventId: raw.eventId ?? `stream:${streamId}`, type: raw.type ?? '?' };
  if (!parsed.ok)
    return {
      ...base,
      shopperId: null,
      transactionId: null,
      authorizationId: null,
      decision: null,
      amountCents: null,
      error: parsed.error,
    };
  const d = parsed.event.d as unknown as Record<string, unknown>;
  const str = (k: string) => (typeof d[k] === 'string' ? (d[k] as string) : null);
  const processorKey =
    str('processor') !== null && str('processor_authorization_id') !== null
      ? `${str('processor')}:${str('processor_authorization_id')}`
      : null;
  return {
    ...base,
    shopperId: str('shopper_id'),
    transactionId: str('transaction_id') ?? processorKey,
    authorizationId: str('authorization_id'),
    decision: str('decision'),
    amountCents: typeof d['amount_cents'] === 'number' ? (d['amount_cents'] as number) : null,
    error: null,
  };
}

/**
 * Reads every partition's stream after its persisted position from the lost region's Redis,
 * bounded (UNPERSISTED_MAX in all). Sets each offset's `unpersisted`.
 */
export async function readUnpersisted(
  redisUrl: string,
  prefix: string,
  offsets: PartitionOffset[],
): Promise<{ entries: UnpersistedEntry[]; truncated: boolean }> {
  const keys = new Keys(prefix, offsets.length);
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 5_000 });
  const entries: UnpersistedEntry[] = [];
  try {
    await redis.connect();
    for (const o of offsets) {
      let start = o.streamId === '-' ? '-' : nextStreamId(o.streamId);
      let n = 0;
      for (;;) {
        const page = (await redis.xrange(keys.wal(o.partition), start, '+', 'COUNT', XRANGE_COUNT)) as [
          string,
          string[],
        ][];
        for (const [id, fields] of page) entries.push(describe(o.partition, id, fields));
        n += page.length;
        const last = page.at(-1);
        if (page.length < XRANGE_COUNT || last === undefined || entries.length >= UNPERSISTED_MAX) break;
        start = nextStreamId(last[0]);
      }
      o.unpersisted = n;
      if (entries.length >= UNPERSISTED_MAX) return { entries, truncated: true };
    }
    return { entries, truncated: false };
  } finally {
    redis.disconnect();
  }
}
