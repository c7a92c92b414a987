// Postgres entities: the recording store behind the WAL (docs/persister.md).
// Every column type is spelled out (no reflect-metadata inference: the build
// has emitDecoratorMetadata off). Amounts are bigint cents and map to strings
// in JS, so a sum past 2^53 is never rounded. `*_ms` columns are epoch ms.
// `*_pos` columns hold a WAL position (walPos(): zero-padded stream id) and
// guard "after" values: an older event never overwrites a newer one.
import { Check, Entity, Index, PrimaryKey, Property, Unique } from '@mikro-orm/core';

@Entity({ tableName: 'trips' })
@Index({ name: 'trips_partition_activity_idx', properties: ['partition', 'activityMs'] })
@Index({ name: 'trips_shopper_created_idx', properties: ['shopperId', 'createdMs'] })
@Check({
  name: 'trips_amounts_check',
  expression: 'estimated_cents >= 0 and picked_cents >= 0 and approved_cents >= 0 and reversed_cents >= 0',
})
export class Trip {
  @PrimaryKey({ type: 'text', fieldName: 'trip_id' }) tripId!: string;
  @Property({ type: 'text', fieldName: 'shopper_id' }) shopperId!: string;
  @Property({ type: 'integer' }) partition!: number;
  /** open → shopping (first item update) → closed. */
  @Property({ type: 'text' }) status!: string;
  @Property({ type: 'text' }) currency!: string;
  @Property({ type: 'text', fieldName: 'merchant_name' }) merchantName!: string;
  @Property({ type: 'text', fieldName: 'merchant_address' }) merchantAddress!: string;
  /** Decimal strings as sent; null when unknown. */
  @Property({ type: 'text', fieldName: 'merchant_lat', nullable: true }) merchantLat?: string | null;
  @Property({ type: 'text', fieldName: 'merchant_lng', nullable: true }) merchantLng?: string | null;
  @Property({ type: 'integer', fieldName: 'tax_rate_bps' }) taxRateBps!: number;
  @Property({ type: 'integer', fieldName: 'tolerance_bps' }) toleranceBps!: number;
  @Property({ type: 'bigint', fieldName: 'tolerance_cents' }) toleranceCents!: string;
  /** null = no hold cap. */
  @Property({ type: 'bigint', fieldName: 'hold_cents', nullable: true }) holdCents?: string | null;
  @Property({ type: 'bigint', fieldName: 'estimated_cents' }) estimatedCents!: string;
  @Property({ type: 'bigint', fieldName: 'picked_cents', default: 0 }) pickedCents!: string;
  @Property({ type: 'bigint', fieldName: 'approved_cents', default: 0 }) approvedCents!: string;
  @Property({ type: 'bigint', fieldName: 'reversed_cents', default: 0 }) reversedCents!: string;
  @Property({ type: 'bigint', fieldName: 'authorized_cents', default: 0 }) authorizedCents!: string;
  /** Canonical spec and its sha256, when the trip.upserted event carries them (identical-PUT check after hydrate). */
  @Property({ type: 'text', fieldName: 'spec_hash', nullable: true }) specHash?: string | null;
  @Property({ type: 'text', nullable: true }) spec?: string | null;
  @Property({ type: 'bigint', fieldName: 'created_ms' }) createdMs!: string;
  @Property({ type: 'bigint', fieldName: 'activity_ms' }) activityMs!: string;
  @Property({ type: 'bigint', fieldName: 'closed_ms', nullable: true }) closedMs?: string | null;
  @Property({ type: 'text', fieldName: 'picked_pos', default: '' }) pickedPos!: string;
  @Property({ type: 'text', fieldName: 'authorized_pos', default: '' }) authorizedPos!: string;
  @Property({ type: 'text', fieldName: 'event_id' }) eventId!: string;
  @Property({ type: 'text', fieldName: 'stream_id' }) streamId!: string;
}

@Entity({ tableName: 'orders' })
export class Order {
  @PrimaryKey({ type: 'text', fieldName: 'trip_id' }) tripId!: string;
  @PrimaryKey({ type: 'text', fieldName: 'order_id' }) orderId!: string;
  @Property({ type: 'integer' }) position!: number;
}

@Entity({ tableName: 'items' })
export class Item {
  @PrimaryKey({ type: 'text', fieldName: 'trip_id' }) tripId!: string;
  @PrimaryKey({ type: 'text', fieldName: 'item_id' }) itemId!: string;
  @Property({ type: 'text', fieldName: 'order_id' }) orderId!: string;
  @Property({ type: 'integer' }) position!: number;
  @Property({ type: 'bigint', fieldName: 'quantity_milli' }) quantityMilli!: string;
  @Property({ type: 'text', nullable: true }) unit?: string | null;
  @Property({ type: 'bigint', fieldName: 'unit_price_cents' }) unitPriceCents!: string;
  @Property({ type: 'bigint', fieldName: 'estimated_cents' }) estimatedCents!: string;
  /** Latest pick (item.updated); null until the item was picked. */
  @Property({ type: 'text', fieldName: 'pick_status', nullable: true }) pickStatus?: string | null;
  @Property({ type: 'bigint', fieldName: 'pick_quantity_milli', nullable: true }) pickQuantityMilli?:
    | string
    | null;
  @Property({ type: 'bigint', fieldName: 'pick_unit_price_cents', nullable: true }) pickUnitPriceCents?:
    | string
    | null;
  @Property({ type: 'bigint', fieldName: 'pick_line_cents', nullable: true }) pickLineCents?: string | null;
  @Property({ type: 'text', fieldName: 'replacement_item_id', nullable: true }) replacementItemId?:
    | string
    | null;
  @Property({ type: 'boolean', fieldName: 'customer_approved', nullable: true }) customerApproved?:
    | boolean
    | null;
  @Property({ type: 'bigint', fieldName: 'picked_ms', nullable: true }) pickedMs?: string | null;
  @Property({ type: 'text', fieldName: 'pick_pos', nullable: true }) pickPos?: string | null;
}

@Entity({ tableName: 'authorizations' })
@Index({ name: 'authorizations_trip_decided_idx', properties: ['tripId', 'decidedMs'] })
@Index({ name: 'authorizations_partition_decided_idx', properties: ['partition', 'decidedMs'] })
/** A processor transaction id is decided once system-wide (across partitions this is the backstop; NULLs are distinct). */
@Unique({ name: 'authorizations_transaction_id_unique', properties: ['transactionId'] })
@Check({ name: 'authorizations_amounts_check', expression: 'amount_cents > 0 and reversed_cents >= 0' })
@Check({ name: 'authorizations_decision_check', expression: "decision in ('approved', 'declined')" })
export class Authorization {
  @PrimaryKey({ type: 'text', fieldName: 'authorization_id' }) authorizationId!: string;
  /** The event that recorded it (unique through processed_events; no second index on the hot path). */
  @Property({ type: 'text', fieldName: 'event_id' }) eventId!: string;
  @Property({ type: 'integer' }) partition!: number;
  @Property({ type: 'text', fieldName: 'stream_id' }) streamId!: string;
  /** `kind:key` as in the Redis idem key. */
  @Property({ type: 'text', fieldName: 'idempotency_key' }) idempotencyKey!: string;
  @Property({ type: 'text' }) fingerprint!: string;
  @Property({ type: 'text', nullable: true }) signature?: string | null;
  @Property({ type: 'integer', fieldName: 'http_status' }) httpStatus!: number;
  @Property({ type: 'text', fieldName: 'transaction_id', nullable: true }) transactionId?: string | null;
  @Property({ type: 'text', fieldName: 'shopper_id' }) shopperId!: string;
  @Property({ type: 'text', fieldName: 'trip_id', nullable: true }) tripId?: string | null;
  @Property({ type: 'text' }) decision!: string;
  @Property({ type: 'text', nullable: true }) reason?: string | null;
  @Property({ type: 'text' }) mode!: string;
  @Property({ type: 'bigint', fieldName: 'amount_cents' }) amountCents!: string;
  @Property({ type: 'bigint', fieldName: 'remaining_cents' }) remainingCents!: string;
  /** The trip's authorized total right after this decision. */
  @Property({ type: 'bigint', fieldName: 'trip_authorized_cents', nullable: true }) tripAuthorizedCents?:
    | string
    | null;
  @Property({ type: 'bigint', fieldName: 'reversed_cents', default: 0 }) reversedCents!: string;
  @Property({ type: 'text', fieldName: 'reversed_pos', default: '' }) reversedPos!: string;
  @Property({ type: 'text' }) currency!: string;
  /** Merchant exactly as the processor sent it. */
  @Property({ type: 'text', fieldName: 'merchant_name' }) merchantName!: string;
  @Property({ type: 'text', fieldName: 'merchant_address' }) merchantAddress!: string;
  @Property({ type: 'text', nullable: true }) lat?: string | null;
  @Property({ type: 'text', nullable: true }) lng?: string | null;
  @Property({ type: 'bigint', fieldName: 'decided_ms' }) decidedMs!: string;
  /** Set for fail-open approvals once replayed into Redis (mode fail_open); trip_id is then the trip counted against. */
  @Property({ type: 'bigint', fieldName: 'replayed_ms', nullable: true }) replayedMs?: string | null;
}

/** Every fail-open journal replay (failopen.replayed), whatever its outcome: reconciliation reads these. */
@Entity({ tableName: 'failopen_replays' })
@Index({ name: 'failopen_replays_authorization_idx', properties: ['authorizationId'] })
export class FailopenReplay {
  @PrimaryKey({ type: 'text', fieldName: 'event_id' }) eventId!: string;
  @Property({ type: 'text', fieldName: 'authorization_id' }) authorizationId!: string;
  @Property({ type: 'integer' }) partition!: number;
  @Property({ type: 'text', fieldName: 'stream_id' }) streamId!: string;
  /** applied | already_decided | conflict */
  @Property({ type: 'text' }) outcome!: string;
  @Property({ type: 'text', fieldName: 'shopper_id' }) shopperId!: string;
  @Property({ type: 'text', fieldName: 'trip_id', nullable: true }) tripId?: string | null;
  @Property({ type: 'text', fieldName: 'transaction_id', nullable: true }) transactionId?: string | null;
  @Property({ type: 'text', fieldName: 'idempotency_key' }) idempotencyKey!: string;
  @Property({ type: 'bigint', fieldName: 'amount_cents' }) amountCents!: string;
  @Property({ type: 'bigint', fieldName: 'decided_ms' }) decidedMs!: string;
  @Property({ type: 'bigint', fieldName: 'replayed_ms' }) replayedMs!: string;
  @Property({ type: 'text', fieldName: 'redis_authorization_id', nullable: true }) redisAuthorizationId?:
    | string
    | null;
  @Property({ type: 'text', fieldName: 'redis_decision', nullable: true }) redisDecision?: string | null;
  @Property({ type: 'text', fieldName: 'redis_reason', nullable: true }) redisReason?: string | null;
}

@Entity({ tableName: 'reversals' })
@Unique({ name: 'reversals_authorization_key_unique', properties: ['authorizationId', 'reversalKey'] })
export class Reversal {
  @PrimaryKey({ type: 'text', fieldName: 'event_id' }) eventId!: string;
  @Property({ type: 'text', fieldName: 'reversal_key' }) reversalKey!: string;
  @Property({ type: 'text', fieldName: 'authorization_id' }) authorizationId!: string;
  @Property({ type: 'text', fieldName: 'transaction_id', nullable: true }) transactionId?: string | null;
  @Property({ type: 'text', fieldName: 'shopper_id' }) shopperId!: string;
  @Property({ type: 'text', fieldName: 'trip_id', nullable: true }) tripId?: string | null;
  @Property({ type: 'integer' }) partition!: number;
  @Property({ type: 'text', fieldName: 'stream_id' }) streamId!: string;
  @Property({ type: 'bigint', fieldName: 'amount_cents' }) amountCents!: string;
  /** Totals right after this reversal. */
  @Property({ type: 'bigint', fieldName: 'reversed_cents' }) reversedCents!: string;
  @Property({ type: 'bigint', fieldName: 'held_cents' }) heldCents!: string;
  @Property({ type: 'bigint', fieldName: 'trip_authorized_cents', nullable: true }) tripAuthorizedCents?:
    | string
    | null;
  /** The amount string the reversal request carried ('' = everything held), when the event has it. */
  @Property({ type: 'text', nullable: true }) requested?: string | null;
  @Property({ type: 'bigint', fieldName: 'applied_ms' }) appliedMs!: string;
}

/** One row per WAL event ever applied: the persister's idempotency key. */
@Entity({ tableName: 'processed_events' })
export class ProcessedEvent {
  @PrimaryKey({ type: 'text', fieldName: 'event_id' }) eventId!: string;
  @Property({ type: 'integer' }) partition!: number;
  @Property({ type: 'text', fieldName: 'stream_id' }) streamId!: string;
  @Property({ type: 'text' }) type!: string;
  @Property({ type: 'timestamptz', fieldName: 'processed_at', defaultRaw: 'now()' }) processedAt!: Date;
}

/** Highest WAL position committed per partition (observability; trimming uses the consumer group). */
@Entity({ tableName: 'stream_offsets' })
export class StreamOffset {
  @PrimaryKey({ type: 'integer', autoincrement: false }) partition!: number;
  @Property({ type: 'text', fieldName: 'stream_id' }) streamId!: string;
  @Property({ type: 'text', fieldName: 'wal_pos' }) walPos!: string;
  @Property({ type: 'bigint', fieldName: 'events_total', default: 0 }) eventsTotal!: string;
  @Property({ type: 'timestamptz', fieldName: 'updated_at', defaultRaw: 'now()' }) updatedAt!: Date;
}

@Entity({ tableName: 'dead_letters' })
@Unique({ name: 'dead_letters_partition_stream_unique', properties: ['partition', 'streamId'] })
export class DeadLetter {
  @PrimaryKey({ type: 'bigint', autoincrement: true }) id!: string;
  @Property({ type: 'integer' }) partition!: number;
  @Property({ type: 'text', fieldName: 'stream_id' }) streamId!: string;
  @Property({ type: 'text', fieldName: 'event_id', nullable: true }) eventId?: string | null;
  @Property({ type: 'text', nullable: true }) type?: string | null;
  /** The raw `d` field as read from the stream. */
  @Property({ type: 'text' }) payload!: string;
  @Property({ type: 'text' }) error!: string;
  @Property({ type: 'integer' }) deliveries!: number;
  @Property({ type: 'timestamptz', fieldName: 'created_at', defaultRaw: 'now()' }) createdAt!: Date;
}

export const ENTITIES = [
  Trip,
  Order,
  Item,
  Authorization,
  FailopenReplay,
  Reversal,
  ProcessedEvent,
  StreamOffset,
  DeadLetter,
];
