// Runs the checked-in migrations (src/db/migrations) up to the latest, in one
// transaction (allOrNothing). Safe to run repeatedly and from several pods at
// once: a session advisory lock serializes concurrent runs.
import type { Logger } from 'pino';
import type { Orm } from './orm.js';

/** Arbitrary constant: the advisory lock id of "schema migration in progress". */
const MIGRATION_LOCK_ID = 734_201_117;

export async function runMigrations(orm: Orm, logger?: Logger): Promise<string[]> {
  const conn = orm.em.getConnection();
  const knex = conn.getKnex();
  // A dedicated connection holds the lock for the whole run.
  return knex.transaction(async (trx) => {
    await trx.raw('select pg_advisory_xact_lock(?)', [MIGRATION_LOCK_ID]);
    const migrator = orm.getMigrator();
    const done = await migrator.up();
    const names = done.map((m) => m.name);
    logger?.info({ applied: names }, names.length > 0 ? 'migrations applied' : 'schema up to date');
    return names;
  });
}
