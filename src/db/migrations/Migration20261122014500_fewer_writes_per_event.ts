import { Migration } from '@mikro-orm/migrations';

/**
 * Fewer writes per WAL event (docs/persister.md, "Throughput"):
 * - An authorization.decided event is claimed by its authorizations row, no longer also by a
 *   processed_events row. `applied_events` lists every applied event either way (rows written
 *   before this migration are in processed_events and are not listed twice).
 * - The persister updates a trip's totals and activity on every batch that touches it. With
 *   `activity_ms` indexed, each update wrote into all three trip indexes; the only reader of
 *   that index (hydrate) pages by (partition, trip_id). Indexing that instead, and leaving room
 *   on each page, lets Postgres make those updates HOT (no index writes).
 */
export class Migration20261122014500_fewer_writes_per_event extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create view "applied_events" as
         select p.event_id, p.partition, p.stream_id, p.type from processed_events p
         union all
         select a.event_id, a.partition, a.stream_id, 'authorization.decided'::text from authorizations a
          where not exists (select 1 from processed_events p where p.event_id = a.event_id);`,
    );
    this.addSql(`drop index "trips_partition_activity_idx";`);
    this.addSql(`create index "trips_partition_trip_idx" on "trips" ("partition", "trip_id");`);
    this.addSql(`alter table "trips" set (fillfactor = 70);`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "trips" reset (fillfactor);`);
    this.addSql(`drop index "trips_partition_trip_idx";`);
    this.addSql(`create index "trips_partition_activity_idx" on "trips" ("partition", "activity_ms");`);
    // Decisions applied since up() have no processed_events row: give them one.
    this.addSql(
      `insert into processed_events (event_id, partition, stream_id, type)
         select event_id, partition, stream_id, type from applied_events
       on conflict (event_id) do nothing;`,
    );
    this.addSql(`drop view "applied_events";`);
  }
}
