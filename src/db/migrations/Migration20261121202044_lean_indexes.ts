import { Migration } from '@mikro-orm/migrations';

export class Migration20261121202044_lean_indexes extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "authorizations" drop constraint if exists "authorizations_decision_check";`);

    this.addSql(`alter table "authorizations" drop constraint "authorizations_event_id_key";`);

    this.addSql(`alter table "authorizations" alter column "decision" type text using ("decision"::text);`);
    this.addSql(
      `alter table "authorizations" add constraint authorizations_decision_check check(decision in ('approved', 'declined'));`,
    );

    this.addSql(`drop index "processed_events_partition_idx";`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "authorizations" drop constraint authorizations_decision_check;`);

    this.addSql(
      `alter table "authorizations" add constraint "authorizations_decision_check" check("decision" in ('approved', 'declined'));`,
    );
    this.addSql(
      `alter table "authorizations" add constraint "authorizations_event_id_key" unique ("event_id");`,
    );

    this.addSql(
      `create index "processed_events_partition_idx" on "processed_events" ("partition", "stream_id");`,
    );
  }
}
