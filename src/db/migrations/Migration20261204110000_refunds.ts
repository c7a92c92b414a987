import { Migration } from '@mikro-orm/migrations';

/**
 * Issue 20, additive only (an expand step): processors' refunds (docs/processors.md "Refunds"),
 * one row per processor refund id; `flagged` when no authorization of ours matched.
 */
export class Migration20261204110000_refunds extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table if not exists "refunds" ("event_id" text not null, "processor" text not null, "refund_id" text not null, "card_id" text not null, "shopper_id" text null, "authorization_ref" text null, "authorization_id" text null, "transaction_id" text null, "partition" int not null, "stream_id" text not null, "currency" text not null, "amount_cents" bigint not null check ("amount_cents" > 0), "refunded_at_ms" bigint not null, "recorded_ms" bigint not null, "flagged" boolean not null, constraint "refunds_pkey" primary key ("event_id"), constraint "refunds_processor_refund_key" unique ("processor", "refund_id"));`,
    );
    this.addSql(`create index if not exists "refunds_authorization_idx" on "refunds" ("authorization_id");`);
    this.addSql(
      `create index if not exists "refunds_flagged_idx" on "refunds" ("recorded_ms") where "flagged";`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "refunds" cascade;`);
  }
}
