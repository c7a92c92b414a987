// Dead-letter path: a WAL entry that failed persisterDeliveriesMax times is
// recorded in the dead_letters table (authoritative, unique per partition and
// stream id) and copied to `<base>wal:dead` (bounded, for operators and
// alerting), counted in persister_dead_letters_total, and only then acked by
// the caller, so the partition moves on and nothing is silently dropped.
// Order: table commit → stream copy → XACK. A crash in between repeats the
// stream copy (at-least-once there; the table and the metric dedupe).
import type { Logger } from 'pino';
import type { Orm } from '../db/orm.js';
import { knexOf } from '../db/orm.js';
import type { Metrics } from '../observability/metrics.js';
import type { RedisClient } from '../redis/client.js';
import { type BatchCall, runBatchOrThrow } from '../redis/batch.js';
import type { Keys } from '../redis/keys.js';
import type { RawEntry } from './events.js';

export interface DeadLetterInput {
  readonly raw: RawEntry;
  readonly error: string;
  readonly deliveries: number;
}

export interface DeadLetterDeps {
  readonly orm: Orm;
  readonly client: RedisClient;
  readonly keys: Keys;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly streamMaxLen: number;
}

export function deadLetterStream(keys: Keys, partition: number): string {
  return `${keys.base(partition)}wal:dead`;
}

const PAYLOAD_CHARS_MAX = 1_000_000;
const ERROR_CHARS_MAX = 2_000;

export async function deadLetter(deps: DeadLetterDeps, items: readonly DeadLetterInput[]): Promise<void> {
  if (items.length === 0) return;
  const rows = items.map(({ raw, error, deliveries }) => ({
    partition: raw.partition,
    stream_id: raw.streamId,
    event_id: raw.eventId ?? null,
    type: raw.type ?? null,
    payload: (raw.data ?? '').slice(0, PAYLOAD_CHARS_MAX),
    error: error.slice(0, ERROR_CHARS_MAX),
    deliveries,
  }));
  const res = (await knexOf(deps.orm).raw(
    `insert into dead_letters (partition, stream_id, event_id, type, payload, error, deliveries)
     select x.* from json_to_recordset(?::json) as x(partition int, stream_id text, event_id text, type text,
            payload text, error text, deliveries int)
     on conflict (partition, stream_id) do nothing
     returning stream_id`,
    [JSON.stringify(rows)],
  )) as { rows: { stream_id: string }[] };
  const adds: BatchCall[] = [];
  for (const { raw, error, deliveries } of items) {
    adds.push([
      'XADD',
      [
        deadLetterStream(deps.keys, raw.partition),
        'MAXLEN',
        '~',
        deps.streamMaxLen,
        '*',
        'src',
        raw.streamId,
        'e',
        raw.eventId ?? '',
        't',
        raw.type ?? '',
        'd',
        raw.data ?? '',
        'err',
        error.slice(0, ERROR_CHARS_MAX),
        'n',
        deliveries,
      ],
    ]);
  }
  await runBatchOrThrow(deps.client, adds);
  deps.metrics.persisterDeadLetters.inc(res.rows.length);
  for (const { raw, error, deliveries } of items) {
    deps.logger.error(
      {
        partition: raw.partition,
        streamId: raw.streamId,
        eventId: raw.eventId,
        type: raw.type,
        deliveries,
        error,
      },
      'WAL event dead-lettered',
    );
  }
}
