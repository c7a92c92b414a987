import { Migration } from '@mikro-orm/migrations';

/** Clearings that could not be applied, recorded for review (issue 19): additive, an expand-only step. */
export class Migration20261204100050_clearing_flags extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table "clearing_flags" ("event_id" text not null, "authorization_id" text not null, "transaction_id" text not null, "shopper_id" text not null, "trip_id" text null, "partition" int not null, "stream_id" text not null, "currency" text not null, "flag" text not null, "amount_cents" bigint not null, "reversed_cents" bigint not null, "cleared_cents" bigint not null, "excess_cents" bigint not null, "cleared_at_ms" bigint not null, "flagged_ms" bigint not null, constraint "clearing_flags_pkey" primary key ("event_id"));`,
    );
    this.addSql(`create index "clearing_flags_authorization_idx" on "clearing_flags" ("authorization_id");`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "clearing_flags" cascade;`);
  }
}
