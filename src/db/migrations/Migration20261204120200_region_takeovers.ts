import { Migration } from '@mikro-orm/migrations';

/**
 * Issue 21, additive only (an expand step): what `region-takeover` recorded of a lost region
 * (docs/regions.md "Losing a region"): the last WAL position its persister had written per
 * partition, the shoppers taken over, and the WAL entries that never reached its Postgres (when
 * its Redis could still be read). Reconciliation reads the last two (`missing_after_takeover`).
 */
export class Migration20261204120200_region_takeovers extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table if not exists "region_takeover_offsets" ("from_region" text not null, "partition" int not null, "stream_id" text not null, "wal_pos" text not null, "events_total" bigint not null, "unpersisted" int null, "taken_ms" bigint not null, constraint "region_takeover_offsets_pkey" primary key ("from_region", "partition"));`,
    );
    this.addSql(
      `create table if not exists "region_takeover_shoppers" ("shopper_id" text not null, "from_region" text not null, "taken_ms" bigint not null, constraint "region_takeover_shoppers_pkey" primary key ("shopper_id"));`,
    );
    this.addSql(
      `create table if not exists "region_takeover_unpersisted" ("from_region" text not null, "event_id" text not null, "partition" int not null, "stream_id" text not null, "type" text not null, "shopper_id" text null, "transaction_id" text null, "authorization_id" text null, "decision" text null, "amount_cents" bigint null, "error" text null, constraint "region_takeover_unpersisted_pkey" primary key ("from_region", "event_id"));`,
    );
    this.addSql(
      `create index if not exists "region_takeover_unpersisted_txn_idx" on "region_takeover_unpersisted" ("transaction_id");`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "region_takeover_unpersisted" cascade;`);
    this.addSql(`drop table if exists "region_takeover_shoppers" cascade;`);
    this.addSql(`drop table if exists "region_takeover_offsets" cascade;`);
  }
}
