import { Migration } from '@mikro-orm/migrations';

/**
 * A trip is (shopper_id, trip_id) (CONTRACT §3), step 1 of 2: expand. Safe while the previous
 * release still serves (helm runs `migrate` before the rollout):
 * - orders and items get their shopper, filled from their trip (trip_id is still unique here, so
 *   the fill is exact), and a trigger fills it for rows the previous release inserts meanwhile;
 * - unique indexes on the new identity, so the new release's ON CONFLICT targets exist;
 * - the previous release's `insert into trips .. on conflict (trip_id) do nothing` would drop a
 *   second shopper's trip with the same id silently: a trigger makes that insert fail instead, so
 *   the event goes to the dead-letter path with its reason (docs/persister.md).
 * The old keys stay until the contract step (Migration20261204100100_trip_identity_contract), which
 * `migrate --contract` applies once no pod of the previous release runs.
 */
/** Transition triggers of the expand step; the contract step drops them and its down() restores them. */
export const TRANSITION_TRIGGERS_SQL: readonly string[] = [
  `create function "trip_child_shopper"() returns trigger language plpgsql as $$
   begin
     if new."shopper_id" is null then
       select t."shopper_id" into new."shopper_id" from "trips" t where t."trip_id" = new."trip_id";
     end if;
     return new;
   end $$;`,
  `create trigger "orders_shopper_fill" before insert on "orders" for each row execute function "trip_child_shopper"();`,
  `create trigger "items_shopper_fill" before insert on "items" for each row execute function "trip_child_shopper"();`,
  `create function "trips_refuse_id_reuse"() returns trigger language plpgsql as $$
   begin
     if exists (select 1 from "trips" t where t."trip_id" = new."trip_id" and t."shopper_id" <> new."shopper_id") then
       raise exception 'trip % of shopper % conflicts with the same trip id of another shopper (schema not contracted yet)',
         new."trip_id", new."shopper_id" using errcode = '23505';
     end if;
     return new;
   end $$;`,
  `create trigger "trips_refuse_id_reuse" before insert on "trips" for each row execute function "trips_refuse_id_reuse"();`,
];

export const DROP_TRANSITION_TRIGGERS_SQL: readonly string[] = [
  `drop trigger "trips_refuse_id_reuse" on "trips";`,
  `drop function "trips_refuse_id_reuse"();`,
  `drop trigger "items_shopper_fill" on "items";`,
  `drop trigger "orders_shopper_fill" on "orders";`,
  `drop function "trip_child_shopper"();`,
];

export class Migration20261204100000_trip_identity_expand extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "orders" add column "shopper_id" text null;`);
    this.addSql(`alter table "items" add column "shopper_id" text null;`);
    this.addSql(
      `update "orders" o set "shopper_id" = t."shopper_id" from "trips" t where t."trip_id" = o."trip_id";`,
    );
    this.addSql(
      `update "items" i set "shopper_id" = t."shopper_id" from "trips" t where t."trip_id" = i."trip_id";`,
    );
    for (const sql of TRANSITION_TRIGGERS_SQL) this.addSql(sql);
    this.addSql(`create unique index "trips_shopper_trip_unique" on "trips" ("shopper_id", "trip_id");`);
    this.addSql(
      `create unique index "orders_shopper_trip_order_unique" on "orders" ("shopper_id", "trip_id", "order_id");`,
    );
    this.addSql(
      `create unique index "items_shopper_trip_item_unique" on "items" ("shopper_id", "trip_id", "item_id");`,
    );
    this.addSql(
      `create index "trips_partition_shopper_trip_idx" on "trips" ("partition", "shopper_id", "trip_id");`,
    );
    this.addSql(
      `create index "authorizations_shopper_trip_decided_idx" on "authorizations" ("shopper_id", "trip_id", "decided_ms");`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop index "authorizations_shopper_trip_decided_idx";`);
    this.addSql(`drop index "trips_partition_shopper_trip_idx";`);
    this.addSql(`drop index "items_shopper_trip_item_unique";`);
    this.addSql(`drop index "orders_shopper_trip_order_unique";`);
    this.addSql(`drop index "trips_shopper_trip_unique";`);
    for (const sql of DROP_TRANSITION_TRIGGERS_SQL) this.addSql(sql);
    this.addSql(`alter table "items" drop column "shopper_id";`);
    this.addSql(`alter table "orders" drop column "shopper_id";`);
  }
}
