// Copies a lost region's rows (its promoted Postgres replica) into this region's
// Postgres for `region-takeover` (src/regions/takeover.ts). Rows keep their ids
// and land with "insert ... on conflict do nothing", so a second run imports
// nothing twice; a row whose id (or another unique key) already exists here with
// different content is a collision: reported, never overwritten or merged.
import type { Knex } from '@mikro-orm/postgresql';

/** Imported, in this order (orders and items reference trips). */
export const IMPORTED_TABLES = [
  'trips',
  'orders',
  'items',
  'processor_cards',
  'authorizations',
  'failopen_replays',
  'reversals',
  'clearings',
  'clearing_flags',
  'hold_expiries',
  'refunds',
  'unknown_card_swipes',
  'ledger_accounts',
  'ledger_transfers',
  'processed_events',
] as const;

/**
 * Not imported: the lost persister's own bookkeeping (stream_offsets is reported as the
 * lost region's WAL position instead), its dead letters (counted in the report), its
 * reconciliation runs, this command's own records and the migrator's table. Any other
 * table fails the takeover: a table this command does not know is not dropped silently.
 */
export const SKIPPED_TABLES = new Set([
  'stream_offsets',
  'dead_letters',
  'reconciliation_runs',
  'reconciliation_items',
  'region_takeover_offsets',
  'region_takeover_shoppers',
  'region_takeover_unpersisted',
  'mikro_orm_migrations',
]);

/** Rows per page: bounds one query's size and memory. */
const PAGE_ROWS = 500;
/** Collisions listed by key in the report (all are counted). */
export const COLLISIONS_LISTED_MAX = 100;
/** Row-insert bookkeeping, not the record: two regions' copies of a shared row differ only here. */
const IGNORED_COLUMNS = ['created_at', 'updated_at'];

export interface TableResult {
  /** Rows in the replica. */
  source: number;
  imported: number;
  /** Already here, identical: a previous run imported them. */
  alreadyPresent: number;
  /** Here, different, for a shopper an earlier takeover of this region took over: changed here since. */
  changedHereSince: number;
  collisions: number;
}

export interface Collision {
  readonly table: string;
  readonly key: Record<string, unknown>;
}

export interface ImportResult {
  readonly tables: Record<string, TableResult>;
  readonly collisions: Collision[];
  /** Shoppers of rows that collided: not recorded as taken over (their rows need a person). */
  readonly collidedShoppers: Set<string>;
}

interface TableShape {
  readonly columns: string[];
  readonly pk: string[];
}

async function tableShape(db: Knex, table: string): Promise<TableShape> {
  const cols = (await db.raw(
    `select column_name from information_schema.columns
      where table_schema = current_schema() and table_name = ? order by column_name`,
    [table],
  )) as { rows: { column_name: string }[] };
  const pk = (await db.raw(
    `select a.attname from pg_index i
       join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
      where i.indrelid = ?::regclass and i.indisprimary
      order by array_position(i.indkey::int2[], a.attnum)`,
    [table],
  )) as { rows: { attname: string }[] };
  return { columns: cols.rows.map((r) => r.column_name), pk: pk.rows.map((r) => r.attname) };
}

/** Every table of the replica is imported or knowingly skipped, with the same columns here. */
export async function checkSchemas(replica: Knex, local: Knex): Promise<Map<string, TableShape>> {
  const tables = (await replica.raw(
    `select table_name from information_schema.tables
      where table_schema = current_schema() and table_type = 'BASE TABLE' order by 1`,
  )) as { rows: { table_name: string }[] };
  const known = new Set<string>(IMPORTED_TABLES);
  const unknown = tables.rows.map((r) => r.table_name).filter((t) => !known.has(t) && !SKIPPED_TABLES.has(t));
  if (unknown.length > 0)
    throw new Error(`replica has tables this command does not know: ${unknown.join(', ')}`);
  const shapes = new Map<string, TableShape>();
  for (const t of IMPORTED_TABLES) {
    const theirs = await tableShape(replica, t);
    const ours = await tableShape(local, t);
    if (theirs.columns.length === 0) continue; // the lost region never had it: nothing to import
    if (theirs.columns.join(',') !== ours.columns.join(',') || ours.pk.length === 0)
      throw new Error(
        `table ${t} differs between the replica and this region: migrate both to the same release first`,
      );
    shapes.set(t, ours);
  }
  return shapes;
}

const q = (ident: string) => `"${ident.replaceAll('"', '""')}"`;

interface Page {
  readonly json: string;
  readonly count: number;
  readonly last: unknown[] | undefined;
}

async function readPage(
  replica: Knex,
  table: string,
  pk: string[],
  after: unknown[] | undefined,
): Promise<Page> {
  const cols = pk.map(q).join(', ');
  const where = after === undefined ? '' : `where (${cols}) > (${pk.map(() => '?').join(', ')})`;
  const res = (await replica.raw(
    `select coalesce(json_agg(x order by ${pk.map((c) => `x.${q(c)}`).join(', ')}), '[]')::text as j, count(*)::int as n
       from (select * from ${q(table)} t ${where} order by ${cols} limit ?) x`,
    [...((after ?? []) as Knex.Value[]), PAGE_ROWS],
  )) as { rows: { j: string; n: number }[] };
  const row = res.rows[0] ?? { j: '[]', n: 0 };
  const rows = JSON.parse(row.j) as Record<string, unknown>[];
  const lastRow = rows.at(-1);
  return { json: row.j, count: row.n, last: lastRow === undefined ? undefined : pk.map((c) => lastRow[c]) };
}

interface PageOutcome {
  readonly imported: number;
  readonly alreadyPresent: number;
  readonly changedHereSince: number;
  readonly collided: { key: Record<string, unknown>; shopper: string | null }[];
}

/**
 * One page into this region in one transaction: new rows inserted; every row not inserted is
 * compared with ours (columns of IGNORED_COLUMNS aside) and judged.
 */
async function writePage(local: Knex, table: string, shape: TableShape, json: string, fromRegion: string) {
  const pkCols = shape.pk.map(q).join(', ');
  const pkJoin = shape.pk.map((c) => `l.${q(c)} = x.${q(c)}`).join(' and ');
  const ignored = IGNORED_COLUMNS.map((c) => ` - '${c}'`).join('');
  const hasShopper = shape.columns.includes('shopper_id');
  const found = `l.${q(shape.pk[0] as string)} is not null`;
  const shopper = hasShopper ? 'x.shopper_id' : 'null::text';
  return local.transaction(async (trx) => {
    const ins = (await trx.raw(
      `insert into ${q(table)} select * from json_populate_recordset(null::${q(table)}, ?::json)
       on conflict do nothing returning ${pkCols}`,
      [json],
    )) as { rows: unknown[] };
    const judged = (await trx.raw(
      `select json_build_object(${shape.pk.map((c) => `'${c}', x.${q(c)}`).join(', ')}) as key, ${shopper} as shopper,
              case when ${found} and (to_jsonb(l)${ignored}) = (to_jsonb(x)${ignored}) then 'same'
                   when ${found} and exists (select 1 from region_takeover_shoppers s
                          where s.shopper_id = ${shopper} and s.from_region = ?) then 'changed'
                   else 'collision' end as verdict
         from json_populate_recordset(null::${q(table)}, ?::json) x
         left join ${q(table)} l on ${pkJoin}`,
      [fromRegion, json],
    )) as { rows: { key: Record<string, unknown>; shopper: string | null; verdict: string }[] };
    return tally(ins.rows.length, judged.rows);
  });
}

/** Rows just inserted compare as 'same' (they are ours now): what is left over is the judgement. */
function tally(
  inserted: number,
  rows: { key: Record<string, unknown>; shopper: string | null; verdict: string }[],
): PageOutcome {
  const same = rows.filter((r) => r.verdict === 'same').length;
  return {
    imported: inserted,
    alreadyPresent: same - inserted,
    changedHereSince: rows.filter((r) => r.verdict === 'changed').length,
    collided: rows.filter((r) => r.verdict === 'collision').map((r) => ({ key: r.key, shopper: r.shopper })),
  };
}

async function importTable(
  replica: Knex,
  local: Knex,
  table: string,
  shape: TableShape,
  fromRegion: string,
  out: ImportResult,
): Promise<TableResult> {
  const result: TableResult = {
    source: 0,
    imported: 0,
    alreadyPresent: 0,
    changedHereSince: 0,
    collisions: 0,
  };
  let after: unknown[] | undefined;
  for (;;) {
    const page = await readPage(replica, table, shape.pk, after);
    if (page.count === 0) return result;
    const o = await writePage(local, table, shape, page.json, fromRegion);
    result.source += page.count;
    result.imported += o.imported;
    result.alreadyPresent += o.alreadyPresent;
    result.changedHereSince += o.changedHereSince;
    result.collisions += o.collided.length;
    for (const c of o.collided) {
      if (out.collisions.length < COLLISIONS_LISTED_MAX) out.collisions.push({ table, key: c.key });
      if (c.shopper !== null) out.collidedShoppers.add(c.shopper);
    }
    if (page.count < PAGE_ROWS) return result;
    after = page.last;
  }
}

/** Imports every table of IMPORTED_TABLES the replica has, in order. */
export async function importRows(replica: Knex, local: Knex, fromRegion: string): Promise<ImportResult> {
  const shapes = await checkSchemas(replica, local);
  const out: ImportResult = { tables: {}, collisions: [], collidedShoppers: new Set() };
  for (const [table, shape] of shapes) {
    out.tables[table] = await importTable(replica, local, table, shape, fromRegion, out);
  }
  return out;
}
