import { Migration } from '@mikro-orm/migrations';

export class Migration20261121200408_failopen extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table "failopen_replays" ("event_id" text not null, "authorization_id" text not null, "partition" int not null, "stream_id" text not null, "outcome" text not null, "shopper_id" text not null, "trip_id" text null, "transaction_id" text null, "idempotency_key" text not null, "amount_cents" bigint not null, "decided_ms" bigint not null, "replayed_ms" bigint not null, "redis_authorization_id" text null, "redis_decision" text null, "redis_reason" text null, constraint "failopen_replays_pkey" primary key ("event_id"));`,
    );
    this.addSql(
      `create index "failopen_replays_authorization_idx" on "failopen_replays" ("authorization_id");`,
    );

    this.addSql(`alter table "authorizations" drop constraint if exists "authorizations_decision_check";`);

    this.addSql(`alter table "authorizations" add column "replayed_ms" bigint null;`);
    this.addSql(`alter table "authorizations" alter column "decision" type text using ("decision"::text);`);
    this.addSql(
      `alter table "authorizations" add constraint authorizations_decision_check check(decision in ('approved', 'declined'));`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "failopen_replays" cascade;`);

    this.addSql(`alter table "authorizations" drop constraint authorizations_decision_check;`);
    this.addSql(`alter table "authorizations" drop column "replayed_ms";`);

    this.addSql(
      `alter table "authorizations" add constraint "authorizations_decision_check" check("decision" in ('approved', 'declined'));`,
    );
  }
}
