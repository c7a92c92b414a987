import { Migration } from '@mikro-orm/migrations';

/** CONTRACT §7: processor cards (card.registered) and the processor's ids on each authorization. */
export class Migration20261204100070_processors extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table "processor_cards" ("processor" text not null, "card_id" text not null, "shopper_id" text not null, "status" text not null, "owners" text not null default '', "partition" int not null, "updated_ms" bigint not null, "updated_pos" text not null, constraint "processor_cards_pkey" primary key ("processor", "card_id"));`,
    );
    this.addSql(`create index "processor_cards_partition_idx" on "processor_cards" ("partition");`);
    this.addSql(
      `alter table "authorizations" add column "processor" text null, add column "processor_card_id" text null, add column "processor_authorization_id" text null, add column "processor_request_id" text null, add column "requested_cents" bigint null;`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "processor_cards" cascade;`);
    this.addSql(
      `alter table "authorizations" drop column "processor", drop column "processor_card_id", drop column "processor_authorization_id", drop column "processor_request_id", drop column "requested_cents";`,
    );
  }
}
