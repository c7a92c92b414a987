import { Migration } from '@mikro-orm/migrations';

/**
 * The ledger as one row per movement of money (docs/ledger.md). An approval used to write a
 * posting and two entries: three rows and six index entries. A transfer row names the debit and
 * the credit account with one positive amount: one row, three index entries, and it balances by
 * construction. The old tables become views over it with the same columns, so every query that
 * read postings or signed entries reads the same rows (entry lines 2i and 2i+1 are transfer i's
 * debit and credit, as `move()` wrote them).
 */
const CREATE_VIEWS = [
  `create view "ledger_postings" as
     select posting_id, kind, authorization_id, transaction_id, shopper_id, currency, event_ms, created_at
       from ledger_transfers where line = 0;`,
  `create view "ledger_entries" as
     select posting_id, (2 * line)::smallint as line, debit_account as account_id, currency,
            -amount_cents as amount_cents, authorization_id
       from ledger_transfers
     union all
     select posting_id, (2 * line + 1)::smallint, credit_account, currency, amount_cents, authorization_id
       from ledger_transfers;`,
];

export class Migration20261122050000_ledger_transfers extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table "ledger_transfers" ("posting_id" text not null, "line" smallint not null, "kind" text not null, "debit_account" text not null, "credit_account" text not null, "currency" text not null, "amount_cents" bigint not null, "authorization_id" text null, "transaction_id" text null, "shopper_id" text null, "event_ms" bigint not null, "created_at" timestamptz not null default now(), constraint "ledger_transfers_pkey" primary key ("posting_id", "line"), constraint ledger_transfers_amount_check check (amount_cents > 0 and debit_account <> credit_account));`,
    );
    this.addSql(
      `create index "ledger_transfers_debit_idx" on "ledger_transfers" ("debit_account", "authorization_id");`,
    );
    this.addSql(
      `create index "ledger_transfers_credit_idx" on "ledger_transfers" ("credit_account", "authorization_id");`,
    );
    // Entries were written in (from, to) pairs: line 2i out of the debit account, 2i+1 into the credit one.
    this.addSql(
      `insert into ledger_transfers (posting_id, line, kind, debit_account, credit_account, currency, amount_cents,
              authorization_id, transaction_id, shopper_id, event_ms, created_at)
       select p.posting_id, d.line / 2, p.kind, d.account_id, c.account_id, p.currency, c.amount_cents,
              p.authorization_id, p.transaction_id, p.shopper_id, p.event_ms, p.created_at
         from ledger_postings p
         join ledger_entries d on d.posting_id = p.posting_id and d.line % 2 = 0
         join ledger_entries c on c.posting_id = p.posting_id and c.line = d.line + 1
        where d.amount_cents = -c.amount_cents and c.amount_cents > 0;`,
    );
    this.addSql(
      `do $$ begin
         if (select count(*) from ledger_entries) <> 2 * (select count(*) from ledger_transfers) then
           raise exception 'ledger_entries are not all (from, to) pairs: nothing migrated';
         end if;
       end $$;`,
    );
    this.addSql(`drop table "ledger_entries";`);
    this.addSql(`drop table "ledger_postings";`);
    for (const sql of CREATE_VIEWS) this.addSql(sql);
  }

  override async down(): Promise<void> {
    this.addSql(`alter view "ledger_postings" rename to "ledger_postings_v";`);
    this.addSql(`alter view "ledger_entries" rename to "ledger_entries_v";`);
    this.addSql(
      `create table "ledger_postings" ("posting_id" text not null, "kind" text not null, "authorization_id" text null, "transaction_id" text null, "shopper_id" text null, "currency" text not null, "event_ms" bigint not null, "created_at" timestamptz not null default now(), constraint "ledger_postings_pkey" primary key ("posting_id"));`,
    );
    this.addSql(
      `create index "ledger_postings_authorization_idx" on "ledger_postings" ("authorization_id");`,
    );
    this.addSql(
      `create table "ledger_entries" ("posting_id" text not null, "line" smallint not null, "account_id" text not null, "currency" text not null, "amount_cents" bigint not null, "authorization_id" text null, constraint "ledger_entries_pkey" primary key ("posting_id", "line"), constraint ledger_entries_amount_check check (amount_cents <> 0));`,
    );
    this.addSql(`create index "ledger_entries_account_idx" on "ledger_entries" ("account_id", "currency");`);
    this.addSql(`insert into ledger_postings select * from ledger_postings_v;`);
    this.addSql(`insert into ledger_entries select * from ledger_entries_v;`);
    this.addSql(`drop view "ledger_entries_v";`);
    this.addSql(`drop view "ledger_postings_v";`);
    this.addSql(`drop table "ledger_transfers";`);
  }
}
