import { Migration } from '@mikro-orm/migrations';

export class Migration20261121203801_ledger extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table "clearings" ("event_id" text not null, "authorization_id" text not null, "transaction_id" text not null, "shopper_id" text not null, "trip_id" text null, "partition" int not null, "stream_id" text not null, "currency" text not null, "amount_cents" bigint not null, "reversed_cents" bigint not null, "released_cents" bigint not null, "cleared_cents" bigint not null, "cleared_at_ms" bigint not null, "applied_ms" bigint not null, constraint "clearings_pkey" primary key ("event_id"), constraint clearings_amounts_check check (cleared_cents > 0 and released_cents >= 0));`,
    );
    this.addSql(
      `alter table "clearings" add constraint "clearings_authorization_unique" unique ("authorization_id");`,
    );

    this.addSql(
      `create table "hold_expiries" ("event_id" text not null, "authorization_id" text not null, "shopper_id" text not null, "trip_id" text null, "partition" int not null, "stream_id" text not null, "currency" text not null, "released_cents" bigint not null, "reason" text not null, "redis_state" text not null, "applied_ms" bigint not null, constraint "hold_expiries_pkey" primary key ("event_id"));`,
    );
    this.addSql(
      `alter table "hold_expiries" add constraint "hold_expiries_authorization_unique" unique ("authorization_id");`,
    );

    this.addSql(
      `create table "ledger_accounts" ("account_id" text not null, "kind" text not null, "shopper_id" text null, "created_at" timestamptz not null default now(), constraint "ledger_accounts_pkey" primary key ("account_id"));`,
    );

    this.addSql(
      `create table "ledger_entries" ("posting_id" text not null, "line" smallint not null, "account_id" text not null, "currency" text not null, "amount_cents" bigint not null, "authorization_id" text null, constraint "ledger_entries_pkey" primary key ("posting_id", "line"), constraint ledger_entries_amount_check check (amount_cents <> 0));`,
    );
    this.addSql(`create index "ledger_entries_authorization_idx" on "ledger_entries" ("authorization_id");`);
    this.addSql(`create index "ledger_entries_account_idx" on "ledger_entries" ("account_id", "currency");`);

    this.addSql(
      `create table "ledger_postings" ("posting_id" text not null, "kind" text not null, "authorization_id" text null, "transaction_id" text null, "shopper_id" text null, "currency" text not null, "event_ms" bigint not null, "created_at" timestamptz not null default now(), constraint "ledger_postings_pkey" primary key ("posting_id"));`,
    );
    this.addSql(
      `create index "ledger_postings_authorization_idx" on "ledger_postings" ("authorization_id");`,
    );

    this.addSql(
      `create table "reconciliation_items" ("id" bigserial primary key, "run_id" bigint not null, "file_hash" text not null, "row_key" text not null, "kind" text not null, "class" text not null, "status" text not null, "row_no" int null, "transaction_id" text null, "authorization_id" text null, "file_amount_cents" bigint null, "our_amount_cents" bigint null, "file_currency" text null, "our_currency" text null, "adjustment_id" text null, "detail" text not null);`,
    );
    this.addSql(
      `create index "reconciliation_items_class_idx" on "reconciliation_items" ("class", "status");`,
    );
    this.addSql(
      `alter table "reconciliation_items" add constraint "reconciliation_items_file_row_unique" unique ("file_hash", "row_key");`,
    );

    this.addSql(
      `create table "reconciliation_runs" ("run_id" bigserial primary key, "file_hash" text not null, "file_name" text not null, "rows_total" int not null, "items_total" int not null, "window_from_ms" bigint not null, "window_to_ms" bigint not null, "started_ms" bigint not null, "duration_ms" int not null, "summary" text not null);`,
    );
    this.addSql(
      `alter table "reconciliation_runs" add constraint "reconciliation_runs_file_hash_unique" unique ("file_hash");`,
    );

    this.addSql(`alter table "authorizations" drop constraint if exists "authorizations_decision_check";`);

    this.addSql(
      `alter table "authorizations" add column "cleared_cents" bigint null, add column "cleared_ms" bigint null, add column "expired_cents" bigint not null default 0, add column "expired_ms" bigint null, add column "late_ms" bigint null, add column "late_elapsed_ms" bigint null;`,
    );
    this.addSql(`alter table "authorizations" alter column "decision" type text using ("decision"::text);`);
    this.addSql(
      `create index authorizations_open_holds_idx on authorizations (decided_ms) where decision = 'approved' and cleared_cents is null and expired_ms is null;`,
    );
    this.addSql(
      `alter table "authorizations" add constraint authorizations_decision_check check(decision in ('approved', 'declined'));`,
    );

    this.addSql(`create index "failopen_replays_transaction_idx" on "failopen_replays" ("transaction_id");`);

    // The fixed ledger accounts (src/ledger/postings.ts); card_holds:<shopper> accounts are added as they appear.
    this.addSql(
      `insert into "ledger_accounts" ("account_id", "kind") values ('program_funding', 'program_funding'), ('merchant_settlement_payable', 'merchant_settlement_payable'), ('failopen_exposure', 'failopen_exposure'), ('adjustments', 'adjustments') on conflict do nothing;`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "clearings" cascade;`);

    this.addSql(`drop table if exists "hold_expiries" cascade;`);

    this.addSql(`drop table if exists "ledger_accounts" cascade;`);

    this.addSql(`drop table if exists "ledger_entries" cascade;`);

    this.addSql(`drop table if exists "ledger_postings" cascade;`);

    this.addSql(`drop table if exists "reconciliation_items" cascade;`);

    this.addSql(`drop table if exists "reconciliation_runs" cascade;`);

    this.addSql(`drop index "authorizations_open_holds_idx";`);
    this.addSql(`alter table "authorizations" drop constraint authorizations_decision_check;`);
    this.addSql(
      `alter table "authorizations" drop column "cleared_cents", drop column "cleared_ms", drop column "expired_cents", drop column "expired_ms", drop column "late_ms", drop column "late_elapsed_ms";`,
    );

    this.addSql(
      `alter table "authorizations" add constraint "authorizations_decision_check" check("decision" in ('approved', 'declined'));`,
    );

    this.addSql(`drop index "failopen_replays_transaction_idx";`);
  }
}
