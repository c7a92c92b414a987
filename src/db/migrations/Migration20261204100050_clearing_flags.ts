import { Migration } from '@mikro-orm/migrations';

/**
 * Issue 19, additive only (an expand step): clearings that could not be applied,
 * recorded for review; the signature a reversal or clearing was accepted with
 * (hydrate rebuilds that endpoint's claim on it: one endpoint per signature).
 */
export class Migration20261204100050_clearing_flags extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table "clearing_flags" ("event_id" text not null, "authorization_id" text not null, "transaction_id" text not null, "shopper_id" text not null, "trip_id" text null, "partition" int not null, "stream_id" text not null, "currency" text not null, "flag" text not null, "amount_cents" bigint not null, "reversed_cents" bigint not null, "cleared_cents" bigint not null, "excess_cents" bigint not null, "cleared_at_ms" bigint not null, "flagged_ms" bigint not null, constraint "clearing_flags_pkey" primary key ("event_id"));`,
    );
    this.addSql(`create index "clearing_flags_authorization_idx" on "clearing_flags" ("authorization_id");`);
    this.addSql(`alter table "reversals" add column "signature" text null;`);
    this.addSql(`alter table "clearings" add column "signature" text null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "clearing_flags" cascade;`);
    this.addSql(`alter table "reversals" drop column if exists "signature";`);
    this.addSql(`alter table "clearings" drop column if exists "signature";`);
  }
}
