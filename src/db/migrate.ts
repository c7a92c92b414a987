// Runs the checked-in migrations (src/db/migrations) in one transaction
// (allOrNothing). Safe to run repeatedly and from several pods at once: a
// session advisory lock serializes concurrent runs.
//
// Expand, then contract: `helm upgrade` runs `migrate` before the rollout,
// while the previous release still serves, so by default only migrations that
// release can live with are applied. A contract migration (CONTRACT_MIGRATIONS)
// removes what the previous release still needs; it runs with `contract: true`
// (`migrate --contract`, the chart's post-upgrade hook), and nothing after a
// pending contract migration runs before it. A database that has no migration
// yet (a fresh install: no previous release can be serving) gets them all.
// `strict` (the migrate command): an expand migration held behind a pending
// contract one is an error, not a warning: the schema would silently fall behind.
import type { Logger } from 'pino';
import { CONTRACT_MIGRATIONS } from './migrations/index.js';
import type { Orm } from './orm.js';

/** Arbitrary constant: the advisory lock id of "schema migration in progress". */
const MIGRATION_LOCK_ID = 734_201_117;

export interface MigrateOptions {
  /** Apply contract migrations too: only once no pod of the previous release runs. */
  readonly contract: boolean;
  /** Throw when a migration that is not a contract one is held back. */
  readonly strict?: boolean;
  readonly logger?: Logger;
}

export async function runMigrations(orm: Orm, options: MigrateOptions): Promise<string[]> {
  const { contract, logger } = options;
  const conn = orm.em.getConnection();
  const knex = conn.getKnex();
  // A dedicated connection holds the lock for the whole run.
  return knex.transaction(async (trx) => {
    await trx.raw('select pg_advisory_xact_lock(?)', [MIGRATION_LOCK_ID]);
    const migrator = orm.getMigrator();
    const pending = (await migrator.getPendingMigrations()).map((m) => m.name);
    const fresh = (await migrator.getExecutedMigrations()).length === 0;
    const firstContract = contract || fresh ? -1 : pending.findIndex((name) => CONTRACT_MIGRATIONS.has(name));
    const toRun = firstContract < 0 ? pending : pending.slice(0, firstContract);
    const done = toRun.length === 0 ? [] : await migrator.up({ migrations: toRun });
    const names = done.map((m) => m.name);
    const held = pending.slice(toRun.length);
    logger?.info({ applied: names, held }, names.length > 0 ? 'migrations applied' : 'schema up to date');
    const heldExpand = held.filter((name) => !CONTRACT_MIGRATIONS.has(name));
    if (heldExpand.length > 0 && options.strict === true) {
      throw new Error(
        `migrations ${heldExpand.join(', ')} wait behind a contract migration: run \`migrate --contract\` first (docs/deploy.md)`,
      );
    }
    if (held.length > 0) {
      logger?.warn(
        { held },
        'contract migrations pending: run `migrate --contract` once the rollout is complete',
      );
    }
    return names;
  });
}
