import { Migration } from '@mikro-orm/migrations';
import {
  DROP_TRANSITION_TRIGGERS_SQL,
  TRANSITION_TRIGGERS_SQL,
} from './Migration20261204100000_trip_identity_expand.js';

/**
 * A trip is (shopper_id, trip_id) (CONTRACT §3), step 2 of 2: contract. Applied by
 * `migrate --contract` (the chart's post-upgrade hook) once every pod runs a release that keys
 * trips by (shopper_id, trip_id): the previous release's `on conflict (trip_id)` has no arbiter
 * after this. Moves the primary keys onto the new identity (using the unique indexes built by the
 * expand step), adds the foreign keys of orders and items to their trip, drops the old indexes and
 * the transition triggers. Rewrites no row.
 */
export class Migration20261204100100_trip_identity_contract extends Migration {
  override async up(): Promise<void> {
    for (const sql of DROP_TRANSITION_TRIGGERS_SQL) this.addSql(sql);
    this.addSql(`alter table "orders" alter column "shopper_id" set not null;`);
    this.addSql(`alter table "items" alter column "shopper_id" set not null;`);
    this.addSql(`alter table "trips" drop constraint "trips_pkey";`);
    this.addSql(
      `alter table "trips" add constraint "trips_pkey" primary key using index "trips_shopper_trip_unique";`,
    );
    this.addSql(`alter table "orders" drop constraint "orders_pkey";`);
    this.addSql(
      `alter table "orders" add constraint "orders_pkey" primary key using index "orders_shopper_trip_order_unique";`,
    );
    this.addSql(`alter table "items" drop constraint "items_pkey";`);
    this.addSql(
      `alter table "items" add constraint "items_pkey" primary key using index "items_shopper_trip_item_unique";`,
    );
    this.addSql(
      `alter table "orders" add constraint "orders_trip_fk" foreign key ("shopper_id", "trip_id")
         references "trips" ("shopper_id", "trip_id") not valid;`,
    );
    this.addSql(`alter table "orders" validate constraint "orders_trip_fk";`);
    this.addSql(
      `alter table "items" add constraint "items_trip_fk" foreign key ("shopper_id", "trip_id")
         references "trips" ("shopper_id", "trip_id") not valid;`,
    );
    this.addSql(`alter table "items" validate constraint "items_trip_fk";`);
    this.addSql(`drop index "trips_partition_trip_idx";`);
    this.addSql(`drop index "authorizations_trip_decided_idx";`);
  }

  override async down(): Promise<void> {
    // Only while every trip id is still unique on its own (no two shoppers share one).
    this.addSql(
      `create index "authorizations_trip_decided_idx" on "authorizations" ("trip_id", "decided_ms");`,
    );
    this.addSql(`create index "trips_partition_trip_idx" on "trips" ("partition", "trip_id");`);
    this.addSql(`alter table "items" drop constraint "items_trip_fk";`);
    this.addSql(`alter table "orders" drop constraint "orders_trip_fk";`);
    this.addSql(`alter table "items" drop constraint "items_pkey";`);
    this.addSql(
      `create unique index "items_shopper_trip_item_unique" on "items" ("shopper_id", "trip_id", "item_id");`,
    );
    this.addSql(`alter table "items" add constraint "items_pkey" primary key ("trip_id", "item_id");`);
    this.addSql(`alter table "orders" drop constraint "orders_pkey";`);
    this.addSql(
      `create unique index "orders_shopper_trip_order_unique" on "orders" ("shopper_id", "trip_id", "order_id");`,
    );
    this.addSql(`alter table "orders" add constraint "orders_pkey" primary key ("trip_id", "order_id");`);
    this.addSql(`alter table "trips" drop constraint "trips_pkey";`);
    this.addSql(`create unique index "trips_shopper_trip_unique" on "trips" ("shopper_id", "trip_id");`);
    this.addSql(`alter table "trips" add constraint "trips_pkey" primary key ("trip_id");`);
    this.addSql(`alter table "items" alter column "shopper_id" drop not null;`);
    this.addSql(`alter table "orders" alter column "shopper_id" drop not null;`);
    for (const sql of TRANSITION_TRIGGERS_SQL) this.addSql(sql);
  }
}
