import { Migration } from '@mikro-orm/migrations';

/**
 * Issue 20, additive only (an expand step): processor swipes on unknown or retired cards,
 * answered UNKNOWN_SHOPPER (docs/processors.md "Swipes on unknown cards"). One row per
 * (processor, request id); the api caps how many are recorded per partition per minute.
 */
export class Migration20261204120100_unknown_card_swipes extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table if not exists "unknown_card_swipes" ("processor" text not null, "request_id" text not null, "authorization_ref" text not null, "authorization_id" text not null, "card_id" text not null, "card_status" text not null, "amount_cents" bigint not null check ("amount_cents" >= 0), "currency" text not null, "merchant_name" text not null, "merchant_mcc" text not null, "merchant_postal" text not null, "merchant_network_id" text not null, "decision" text not null, "reason" text not null, "decided_ms" bigint not null, "event_id" text not null, "partition" int not null, "stream_id" text not null, constraint "unknown_card_swipes_pkey" primary key ("processor", "request_id"));`,
    );
    this.addSql(
      `create index if not exists "unknown_card_swipes_card_idx" on "unknown_card_swipes" ("processor", "card_id", "decided_ms");`,
    );
    // Retention deletes by age (src/persister/unknownCardRetention.ts).
    this.addSql(
      `create index if not exists "unknown_card_swipes_decided_idx" on "unknown_card_swipes" ("decided_ms");`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "unknown_card_swipes" cascade;`);
  }
}
