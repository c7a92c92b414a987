import { Migration } from '@mikro-orm/migrations';

/**
 * An approval writes two ledger entries; each paid for three index entries. The one on
 * authorization_id repeats what ledger_postings_authorization_idx already gives (an
 * authorization's postings, then their entries by primary key), so it goes.
 */
export class Migration20261122023000_ledger_entries_lean extends Migration {
  override async up(): Promise<void> {
    this.addSql(`drop index "ledger_entries_authorization_idx";`);
  }

  override async down(): Promise<void> {
    this.addSql(`create index "ledger_entries_authorization_idx" on "ledger_entries" ("authorization_id");`);
  }
}
