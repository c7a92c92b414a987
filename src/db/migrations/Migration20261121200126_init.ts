import { Migration } from '@mikro-orm/migrations';

export class Migration20261121200126_init extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table "authorizations" ("authorization_id" text not null, "event_id" text not null, "partition" int not null, "stream_id" text not null, "idempotency_key" text not null, "fingerprint" text not null, "signature" text null, "http_status" int not null, "transaction_id" text null, "shopper_id" text not null, "trip_id" text null, "decision" text not null, "reason" text null, "mode" text not null, "amount_cents" bigint not null, "remaining_cents" bigint not null, "trip_authorized_cents" bigint null, "reversed_cents" bigint not null default 0, "reversed_pos" text not null default '', "currency" text not null, "merchant_name" text not null, "merchant_address" text not null, "lat" text null, "lng" text null, "decided_ms" bigint not null, constraint "authorizations_pkey" primary key ("authorization_id"), constraint authorizations_decision_check check (decision in ('approved', 'declined')), constraint authorizations_amounts_check check (amount_cents > 0 and reversed_cents >= 0));`,
    );
    this.addSql(
      `alter table "authorizations" add constraint "authorizations_event_id_key" unique ("event_id");`,
    );
    this.addSql(
      `create index "authorizations_partition_decided_idx" on "authorizations" ("partition", "decided_ms");`,
    );
    this.addSql(
      `create index "authorizations_trip_decided_idx" on "authorizations" ("trip_id", "decided_ms");`,
    );
    this.addSql(
      `alter table "authorizations" add constraint "authorizations_transaction_id_unique" unique ("transaction_id");`,
    );

    this.addSql(
      `create table "dead_letters" ("id" bigserial primary key, "partition" int not null, "stream_id" text not null, "event_id" text null, "type" text null, "payload" text not null, "error" text not null, "deliveries" int not null, "created_at" timestamptz not null default now());`,
    );
    this.addSql(
      `alter table "dead_letters" add constraint "dead_letters_partition_stream_unique" unique ("partition", "stream_id");`,
    );

    this.addSql(
      `create table "items" ("trip_id" text not null, "item_id" text not null, "order_id" text not null, "position" int not null, "quantity_milli" bigint not null, "unit" text null, "unit_price_cents" bigint not null, "estimated_cents" bigint not null, "pick_status" text null, "pick_quantity_milli" bigint null, "pick_unit_price_cents" bigint null, "pick_line_cents" bigint null, "replacement_item_id" text null, "customer_approved" boolean null, "picked_ms" bigint null, "pick_pos" text null, constraint "items_pkey" primary key ("trip_id", "item_id"));`,
    );

    this.addSql(
      `create table "orders" ("trip_id" text not null, "order_id" text not null, "position" int not null, constraint "orders_pkey" primary key ("trip_id", "order_id"));`,
    );

    this.addSql(
      `create table "processed_events" ("event_id" text not null, "partition" int not null, "stream_id" text not null, "type" text not null, "processed_at" timestamptz not null default now(), constraint "processed_events_pkey" primary key ("event_id"));`,
    );
    this.addSql(
      `create index "processed_events_partition_idx" on "processed_events" ("partition", "stream_id");`,
    );

    this.addSql(
      `create table "reversals" ("event_id" text not null, "reversal_key" text not null, "authorization_id" text not null, "transaction_id" text null, "shopper_id" text not null, "trip_id" text null, "partition" int not null, "stream_id" text not null, "amount_cents" bigint not null, "reversed_cents" bigint not null, "held_cents" bigint not null, "trip_authorized_cents" bigint null, "requested" text null, "applied_ms" bigint not null, constraint "reversals_pkey" primary key ("event_id"));`,
    );
    this.addSql(
      `alter table "reversals" add constraint "reversals_authorization_key_unique" unique ("authorization_id", "reversal_key");`,
    );

    this.addSql(
      `create table "stream_offsets" ("partition" int not null, "stream_id" text not null, "wal_pos" text not null, "events_total" bigint not null default 0, "updated_at" timestamptz not null default now(), constraint "stream_offsets_pkey" primary key ("partition"));`,
    );

    this.addSql(
      `create table "trips" ("trip_id" text not null, "shopper_id" text not null, "partition" int not null, "status" text not null, "currency" text not null, "merchant_name" text not null, "merchant_address" text not null, "merchant_lat" text null, "merchant_lng" text null, "tax_rate_bps" int not null, "tolerance_bps" int not null, "tolerance_cents" bigint not null, "hold_cents" bigint null, "estimated_cents" bigint not null, "picked_cents" bigint not null default 0, "approved_cents" bigint not null default 0, "reversed_cents" bigint not null default 0, "authorized_cents" bigint not null default 0, "spec_hash" text null, "spec" text null, "created_ms" bigint not null, "activity_ms" bigint not null, "closed_ms" bigint null, "picked_pos" text not null default '', "authorized_pos" text not null default '', "event_id" text not null, "stream_id" text not null, constraint "trips_pkey" primary key ("trip_id"), constraint trips_amounts_check check (estimated_cents >= 0 and picked_cents >= 0 and approved_cents >= 0 and reversed_cents >= 0));`,
    );
    this.addSql(`create index "trips_shopper_created_idx" on "trips" ("shopper_id", "created_ms");`);
    this.addSql(`create index "trips_partition_activity_idx" on "trips" ("partition", "activity_ms");`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "authorizations" cascade;`);

    this.addSql(`drop table if exists "dead_letters" cascade;`);

    this.addSql(`drop table if exists "items" cascade;`);

    this.addSql(`drop table if exists "orders" cascade;`);

    this.addSql(`drop table if exists "processed_events" cascade;`);

    this.addSql(`drop table if exists "reversals" cascade;`);

    this.addSql(`drop table if exists "stream_offsets" cascade;`);

    this.addSql(`drop table if exists "trips" cascade;`);
  }
}
