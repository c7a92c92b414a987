// Postgres entities: the recording store behind the WAL (docs/persister.md).
// Every column type is spelled out (no reflect-metadata inference: the build
// has emitDecoratorMetadata off). Amounts are bigint cents and map to strings
// in JS, so a sum past 2^53 is never rounded. `*_ms` columns are epoch ms.
// `*_pos` columns hold a WAL position (walPos(): zero-padded stream id) and
// guard "after" values: an older event never overwrites a newer one.
import { Check, Entity, Index, PrimaryKey, Property, Unique } from '@mikro-orm/core';

/**
 * A trip is (shopper_id, trip_id) (CONTRACT §3): two shoppers may each have a trip `t1`. Orders and
 * items belong to one trip through the same pair (Migration20261204100000/100100_trip_identity).
 */
@Entity({ tableName: 'trips' })
// (partition, shopper_id, trip_id): hydrate pages a partition's trips by identity; activity_ms stays
// unindexed so the persister's per-batch total updates are HOT (Migration20261122014500_fewer_writes_per_event).
@Index({ name: 'trips_partition_shopper_trip_idx', properties: ['partition', 'shopperId', 'tripId'] })
@Index({ name: 'trips_shopper_created_idx', properties: ['shopperId', 'createdMs'] })
@Check({
  name: 'trips_amounts_check',
  expression: 'estimated_cents >= 0 and picked_cents >= 0 and approved_cents >= 0 and reversed_cents >= 0',
})
export class Trip {
  @PrimaryKey({ type: 'text', fieldName: 'shopper_id' }) shopperId!: string;
  @PrimaryKey({ type: 'text', fieldName: 'trip_id' }) tripId!: string;
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
  @PrimaryKey({ type: 'text', fieldName: 'shopper_id' }) shopperId!: string;
  @PrimaryKey({ type: 'text', fieldName: 'trip_id' }) tripId!: string;
  @PrimaryKey({ type: 'text', fieldName: 'order_id' }) orderId!: string;
  @Property({ type: 'integer' }) position!: number;
}

@Entity({ tableName: 'items' })
export class Item {
  @PrimaryKey({ type: 'text', fieldName: 'shopper_id' }) shopperId!: string;
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
@Index({ name: 'authorizations_shopper_trip_decided_idx', properties: ['shopperId', 'tripId', 'decidedMs'] })
@Index({ name: 'authorizations_partition_decided_idx', properties: ['partition', 'decidedMs'] })
/** A processor transaction id is decided once system-wide (across partitions this is the backstop; NULLs are distinct). */
@Unique({ name: 'authorizations_transaction_id_unique', properties: ['transactionId'] })
@Check({ name: 'authorizations_amounts_check', expression: 'amount_cents > 0 and reversed_cents >= 0' })
/** Hold expiry sweep: approved holds neither cleared nor expired, oldest first (src/ledger/holdExpiry.ts). */
@Index({
  name: 'authorizations_open_holds_idx',
  expression:
    "create index authorizations_open_holds_idx on authorizations (decided_ms) where decision = 'approved' and cleared_cents is null and expired_ms is null",
})
@Check({ name: 'authorizations_decision_check', expression: "decision in ('approved', 'declined')" })
export class Authorization {
  @PrimaryKey({ type: 'text', fieldName: 'authorization_id' }) authorizationId!: string;
  /**
   * The event that recorded it: the authorization.decided event (whose claim this row is: one
   * decision, one authorization id, one event), or the applied failopen.replayed event (claimed in
   * processed_events). No index on the hot path; `applied_events` lists both kinds.
   */
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
  /** Processor swipes (CONTRACT §7): whose format, which card, the processor's own ids, what was asked. */
  @Property({ type: 'text', nullable: true }) processor?: string | null;
  @Property({ type: 'text', fieldName: 'processor_card_id', nullable: true }) processorCardId?: string | null;
  @Property({ type: 'text', fieldName: 'processor_authorization_id', nullable: true })
  processorAuthorizationId?: string | null;
  @Property({ type: 'text', fieldName: 'processor_request_id', nullable: true }) processorRequestId?:
    | string
    | null;
  /** The amount asked for; above amount_cents only for a partial approval. */
  @Property({ type: 'bigint', fieldName: 'requested_cents', nullable: true }) requestedCents?: string | null;
  /** The settled amount (clearing.posted); null until cleared. */
  @Property({ type: 'bigint', fieldName: 'cleared_cents', nullable: true }) clearedCents?: string | null;
  @Property({ type: 'bigint', fieldName: 'cleared_ms', nullable: true }) clearedMs?: string | null;
  /** What hold expiry (or reconciliation) released (hold.expired). */
  @Property({ type: 'bigint', fieldName: 'expired_cents', default: 0 }) expiredCents!: string;
  @Property({ type: 'bigint', fieldName: 'expired_ms', nullable: true }) expiredMs?: string | null;
  /** Answered after the processor's deadline (authorization.late): the processor declined it. */
  @Property({ type: 'bigint', fieldName: 'late_ms', nullable: true }) lateMs?: string | null;
  @Property({ type: 'bigint', fieldName: 'late_elapsed_ms', nullable: true }) lateElapsedMs?: string | null;
}

/** Every fail-open journal replay (failopen.replayed), whatever its outcome: reconciliation reads these. */
@Entity({ tableName: 'failopen_replays' })
@Index({ name: 'failopen_replays_authorization_idx', properties: ['authorizationId'] })
@Index({ name: 'failopen_replays_transaction_idx', properties: ['transactionId'] })
export class FailopenReplay {
  @PrimaryKey({ type: 'text', fieldName: 'event_id' }) eventId!: string;
  @Property({ type: 'text', fieldName: 'authorization_id' }) authorizationId!: string;
  @Property({ type: 'integer' }) partition!: number;
  @Property({ type: 'text', fieldName: 'stream_id' }) streamId!: string;
  /** applied | already_decided | conflict | overridden (Redis declined our late call; the approval given stands) */
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
  /** Signature v1 the request was accepted with: hydrate rebuilds the endpoint's claim on it. */
  @Property({ type: 'text', nullable: true }) signature?: string | null;
  @Property({ type: 'bigint', fieldName: 'applied_ms' }) appliedMs!: string;
}

/** One clearing per authorization (clearing.posted). */
@Entity({ tableName: 'clearings' })
@Unique({ name: 'clearings_authorization_unique', properties: ['authorizationId'] })
@Check({ name: 'clearings_amounts_check', expression: 'cleared_cents > 0 and released_cents >= 0' })
export class Clearing {
  @PrimaryKey({ type: 'text', fieldName: 'event_id' }) eventId!: string;
  @Property({ type: 'text', fieldName: 'authorization_id' }) authorizationId!: string;
  @Property({ type: 'text', fieldName: 'transaction_id' }) transactionId!: string;
  @Property({ type: 'text', fieldName: 'shopper_id' }) shopperId!: string;
  @Property({ type: 'text', fieldName: 'trip_id', nullable: true }) tripId?: string | null;
  @Property({ type: 'integer' }) partition!: number;
  @Property({ type: 'text', fieldName: 'stream_id' }) streamId!: string;
  @Property({ type: 'text' }) currency!: string;
  /** The authorization's amount and reversed total when it was cleared. */
  @Property({ type: 'bigint', fieldName: 'amount_cents' }) amountCents!: string;
  @Property({ type: 'bigint', fieldName: 'reversed_cents' }) reversedCents!: string;
  /** Hold released by this clearing (0 when the hold had expired). */
  @Property({ type: 'bigint', fieldName: 'released_cents' }) releasedCents!: string;
  @Property({ type: 'bigint', fieldName: 'cleared_cents' }) clearedCents!: string;
  @Property({ type: 'bigint', fieldName: 'cleared_at_ms' }) clearedAtMs!: string;
  @Property({ type: 'bigint', fieldName: 'applied_ms' }) appliedMs!: string;
  /** Signature v1 the request was accepted with: hydrate rebuilds the endpoint's claim on it. */
  @Property({ type: 'text', nullable: true }) signature?: string | null;
}

/**
 * A clearing the processor posted that could not be applied (clearing.flagged):
 * above what the authorization held plus slack, on a reversed or a declined
 * authorization. Money that moved at the network, recorded for review, never lost.
 */
@Entity({ tableName: 'clearing_flags' })
@Index({ name: 'clearing_flags_authorization_idx', properties: ['authorizationId'] })
export class ClearingFlag {
  @PrimaryKey({ type: 'text', fieldName: 'event_id' }) eventId!: string;
  @Property({ type: 'text', fieldName: 'authorization_id' }) authorizationId!: string;
  @Property({ type: 'text', fieldName: 'transaction_id' }) transactionId!: string;
  @Property({ type: 'text', fieldName: 'shopper_id' }) shopperId!: string;
  @Property({ type: 'text', fieldName: 'trip_id', nullable: true }) tripId?: string | null;
  @Property({ type: 'integer' }) partition!: number;
  @Property({ type: 'text', fieldName: 'stream_id' }) streamId!: string;
  @Property({ type: 'text' }) currency!: string;
  /** above_authorized | reversed_authorization | not_approved */
  @Property({ type: 'text' }) flag!: string;
  @Property({ type: 'bigint', fieldName: 'amount_cents' }) amountCents!: string;
  @Property({ type: 'bigint', fieldName: 'reversed_cents' }) reversedCents!: string;
  @Property({ type: 'bigint', fieldName: 'cleared_cents' }) clearedCents!: string;
  /** What the clearing is above what could be applied. */
  @Property({ type: 'bigint', fieldName: 'excess_cents' }) excessCents!: string;
  @Property({ type: 'bigint', fieldName: 'cleared_at_ms' }) clearedAtMs!: string;
  @Property({ type: 'bigint', fieldName: 'flagged_ms' }) flaggedMs!: string;
}

/** One hold release per authorization (hold.expired: expiry sweep or reconciliation). */
@Entity({ tableName: 'hold_expiries' })
@Unique({ name: 'hold_expiries_authorization_unique', properties: ['authorizationId'] })
export class HoldExpiry {
  @PrimaryKey({ type: 'text', fieldName: 'event_id' }) eventId!: string;
  @Property({ type: 'text', fieldName: 'authorization_id' }) authorizationId!: string;
  @Property({ type: 'text', fieldName: 'shopper_id' }) shopperId!: string;
  @Property({ type: 'text', fieldName: 'trip_id', nullable: true }) tripId?: string | null;
  @Property({ type: 'integer' }) partition!: number;
  @Property({ type: 'text', fieldName: 'stream_id' }) streamId!: string;
  @Property({ type: 'text' }) currency!: string;
  @Property({ type: 'bigint', fieldName: 'released_cents' }) releasedCents!: string;
  /** expiry | reconciliation */
  @Property({ type: 'text' }) reason!: string;
  /** present | missing: whether Redis still had the authorization hash. */
  @Property({ type: 'text', fieldName: 'redis_state' }) redisState!: string;
  @Property({ type: 'bigint', fieldName: 'applied_ms' }) appliedMs!: string;
}

/** Ledger accounts (docs/ledger.md): program_funding, card_holds:<shopper>, merchant_settlement_payable, failopen_exposure, adjustments. */
@Entity({ tableName: 'ledger_accounts' })
export class LedgerAccount {
  @PrimaryKey({ type: 'text', fieldName: 'account_id' }) accountId!: string;
  @Property({ type: 'text' }) kind!: string;
  @Property({ type: 'text', fieldName: 'shopper_id', nullable: true }) shopperId?: string | null;
  @Property({ type: 'timestamptz', fieldName: 'created_at', defaultRaw: 'now()' }) createdAt!: Date;
}

/**
 * The ledger (docs/ledger.md): one row per movement of money. A posting (posting_id = the WAL
 * event id, or recon:<kind>:<subject> for reconciliation adjustments) has one transfer per line;
 * `amount_cents` (> 0) leave the debit account and arrive in the credit account. The views
 * `ledger_postings` and `ledger_entries` (migration 20261122050000) show the same rows as postings
 * and as signed double entries.
 */
@Entity({ tableName: 'ledger_transfers' })
// Balances and the per-authorization sub-ledger: (account, authorization) on either side.
@Index({ name: 'ledger_transfers_debit_idx', properties: ['debitAccount', 'authorizationId'] })
@Index({ name: 'ledger_transfers_credit_idx', properties: ['creditAccount', 'authorizationId'] })
@Check({
  name: 'ledger_transfers_amount_check',
  expression: 'amount_cents > 0 and debit_account <> credit_account',
})
export class LedgerTransfer {
  @PrimaryKey({ type: 'text', fieldName: 'posting_id' }) postingId!: string;
  @PrimaryKey({ type: 'smallint' }) line!: number;
  /** authorization | failopen_approval | failopen_exposure | reversal | clearing | hold_expiry | adjustment */
  @Property({ type: 'text' }) kind!: string;
  @Property({ type: 'text', fieldName: 'debit_account' }) debitAccount!: string;
  @Property({ type: 'text', fieldName: 'credit_account' }) creditAccount!: string;
  @Property({ type: 'text' }) currency!: string;
  @Property({ type: 'bigint', fieldName: 'amount_cents' }) amountCents!: string;
  /** The authorization whose hold this posting moves (card holds sub-ledger). */
  @Property({ type: 'text', fieldName: 'authorization_id', nullable: true }) authorizationId?: string | null;
  @Property({ type: 'text', fieldName: 'transaction_id', nullable: true }) transactionId?: string | null;
  @Property({ type: 'text', fieldName: 'shopper_id', nullable: true }) shopperId?: string | null;
  @Property({ type: 'bigint', fieldName: 'event_ms' }) eventMs!: string;
  @Property({ type: 'timestamptz', fieldName: 'created_at', defaultRaw: 'now()' }) createdAt!: Date;
}

/**
 * Read-only: the ledger in its signed double-entry form, two entries per transfer (the
 * `ledger_entries` view). Each posting's entries sum to zero per currency.
 */
@Entity({
  expression:
    'select posting_id, line, account_id, currency, amount_cents, authorization_id from ledger_entries',
})
export class LedgerEntry {
  @Property({ type: 'text', fieldName: 'posting_id' }) postingId!: string;
  /** 2i: transfer i's debit (amount < 0); 2i+1: its credit (amount > 0). */
  @Property({ type: 'smallint' }) line!: number;
  @Property({ type: 'text', fieldName: 'account_id' }) accountId!: string;
  @Property({ type: 'text' }) currency!: string;
  /** Integer cents as a BigInt: > 0 into the account, < 0 out of it. */
  @Property({ type: 'bigint', fieldName: 'amount_cents' }) amountCents!: bigint;
  @Property({ type: 'text', fieldName: 'authorization_id', nullable: true }) authorizationId?: string | null;
}

/** One reconciliation run per settlement file (file_hash): a re-run of the same file changes nothing. */
@Entity({ tableName: 'reconciliation_runs' })
@Unique({ name: 'reconciliation_runs_file_hash_unique', properties: ['fileHash'] })
export class ReconciliationRun {
  @PrimaryKey({ type: 'bigint', autoincrement: true, fieldName: 'run_id' }) runId!: string;
  @Property({ type: 'text', fieldName: 'file_hash' }) fileHash!: string;
  @Property({ type: 'text', fieldName: 'file_name' }) fileName!: string;
  @Property({ type: 'integer', fieldName: 'rows_total' }) rowsTotal!: number;
  @Property({ type: 'integer', fieldName: 'items_total' }) itemsTotal!: number;
  @Property({ type: 'bigint', fieldName: 'window_from_ms' }) windowFromMs!: string;
  @Property({ type: 'bigint', fieldName: 'window_to_ms' }) windowToMs!: string;
  @Property({ type: 'bigint', fieldName: 'started_ms' }) startedMs!: string;
  @Property({ type: 'integer', fieldName: 'duration_ms' }) durationMs!: number;
  /** JSON: counts by kind and class. */
  @Property({ type: 'text' }) summary!: string;
}

/** One mismatch found by a run; unique per (file hash, row key): `row:<n>` for file rows, `auth:<id>` for authorizations. */
@Entity({ tableName: 'reconciliation_items' })
@Unique({ name: 'reconciliation_items_file_row_unique', properties: ['fileHash', 'rowKey'] })
@Index({ name: 'reconciliation_items_class_idx', properties: ['klass', 'status'] })
export class ReconciliationItem {
  @PrimaryKey({ type: 'bigint', autoincrement: true }) id!: string;
  @Property({ type: 'bigint', fieldName: 'run_id' }) runId!: string;
  @Property({ type: 'text', fieldName: 'file_hash' }) fileHash!: string;
  @Property({ type: 'text', fieldName: 'row_key' }) rowKey!: string;
  @Property({ type: 'text' }) kind!: string;
  /** auto_adjusted | needs_review | unclassified */
  @Property({ type: 'text', fieldName: 'class' }) klass!: string;
  /** adjusted | open | queued */
  @Property({ type: 'text' }) status!: string;
  @Property({ type: 'integer', fieldName: 'row_no', nullable: true }) rowNo?: number | null;
  @Property({ type: 'text', fieldName: 'transaction_id', nullable: true }) transactionId?: string | null;
  @Property({ type: 'text', fieldName: 'authorization_id', nullable: true }) authorizationId?: string | null;
  @Property({ type: 'bigint', fieldName: 'file_amount_cents', nullable: true }) fileAmountCents?:
    | string
    | null;
  @Property({ type: 'bigint', fieldName: 'our_amount_cents', nullable: true }) ourAmountCents?: string | null;
  @Property({ type: 'text', fieldName: 'file_currency', nullable: true }) fileCurrency?: string | null;
  @Property({ type: 'text', fieldName: 'our_currency', nullable: true }) ourCurrency?: string | null;
  /** The ledger posting or WAL event of the automatic adjustment. */
  @Property({ type: 'text', fieldName: 'adjustment_id', nullable: true }) adjustmentId?: string | null;
  @Property({ type: 'text' }) detail!: string;
}

/**
 * The persister's idempotency key for every WAL event type except authorization.decided, which is
 * claimed by its authorizations row. The view `applied_events` lists every applied event.
 */
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

/** A processor card and its shopper (CONTRACT §7; lua/registerCard-2.lua, card.registered). */
@Entity({ tableName: 'processor_cards' })
@Index({ name: 'processor_cards_partition_idx', properties: ['partition'] })
export class ProcessorCard {
  @PrimaryKey({ type: 'text' }) processor!: string;
  @PrimaryKey({ type: 'text', fieldName: 'card_id' }) cardId!: string;
  @Property({ type: 'text', fieldName: 'shopper_id' }) shopperId!: string;
  /** active | retired */
  @Property({ type: 'text' }) status!: string;
  /** Earlier owners, comma-separated (their authorizations' later events still find them). */
  @Property({ type: 'text', default: '' }) owners!: string;
  /** The card's partition (crc32("<processor>:<card_id>") mod P), for hydrate. */
  @Property({ type: 'integer' }) partition!: number;
  @Property({ type: 'bigint', fieldName: 'updated_ms' }) updatedMs!: string;
  /** WAL position of the last applied event: an older event never overwrites a newer one. */
  @Property({ type: 'text', fieldName: 'updated_pos' }) updatedPos!: string;
}

export const ENTITIES = [
  Trip,
  ProcessorCard,
  Order,
  Item,
  Authorization,
  FailopenReplay,
  Reversal,
  Clearing,
  ClearingFlag,
  HoldExpiry,
  LedgerAccount,
  LedgerTransfer,
  LedgerEntry,
  ReconciliationRun,
  ReconciliationItem,
  ProcessedEvent,
  StreamOffset,
  DeadLetter,
];
