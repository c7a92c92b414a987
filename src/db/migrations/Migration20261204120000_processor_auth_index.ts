import { Migration } from '@mikro-orm/migrations';

/**
 * Issue 20, additive only (an expand step): the processor's authorization id on each authorization,
 * looked up by reconciliation (`<processor>:<id>` rows, docs/ledger.md "Processor swipes").
 * Plain CREATE INDEX, not CONCURRENTLY: migrations run in one transaction (src/db/migrate.ts,
 * allOrNothing) and CONCURRENTLY cannot run inside one. It holds a SHARE lock on `authorizations`
 * (the persister's inserts wait) for the build: docs/deploy.md gives the figure and how to build it
 * by hand beforehand on a large table (the IF NOT EXISTS then makes this a no-op).
 * Partial: native swipes (no processor) are most rows and never looked up this way.
 */
export class Migration20261204120000_processor_auth_index extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create index if not exists "authorizations_processor_auth_idx" on "authorizations" ("processor", "processor_authorization_id") where "processor" is not null;`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop index if exists "authorizations_processor_auth_idx";`);
  }
}
