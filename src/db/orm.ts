// MikroORM factory. Every option that matters is passed explicitly (no
// mikro-orm.config discovery, no folder scanning): entities are listed, the
// migrations are imported statically (src/db/migrations/index.ts), so the
// same code runs from src/ under vitest and from dist/ in the image.
import { Migrator } from '@mikro-orm/migrations';
import { type Knex, MikroORM, PostgreSqlDriver } from '@mikro-orm/postgresql';
import { ENTITIES } from './entities.js';
import { MIGRATIONS } from './migrations/index.js';

export interface OrmOptions {
  readonly databaseUrl: string;
  /** Connections in the pool; the persister needs one per in-flight batch plus one for dead letters. */
  readonly poolMax?: number;
  /** Per-statement timeout in ms (0 = none). Bounds how long a batch can hang on a stuck server. */
  readonly statementTimeoutMs?: number;
  readonly debug?: boolean;
  /**
   * Write src/db/migrations/.snapshot-swipe-authorizer.json after migrations run (MikroORM does it
   * after every up or down when on). Only the migration generator wants it: elsewhere it would
   * rewrite a checked-in file from whatever schema the database has (a test that migrates down
   * did exactly that).
   */
  readonly snapshot?: boolean;
}

export type Orm = MikroORM;

export async function createOrm(options: OrmOptions): Promise<Orm> {
  const poolMax = options.poolMax ?? 4;
  const statementTimeoutMs = options.statementTimeoutMs ?? 30_000;
  return MikroORM.init({
    driver: PostgreSqlDriver,
    clientUrl: options.databaseUrl,
    entities: ENTITIES,
    discovery: { warnWhenNoEntities: true, requireEntitiesArray: true, disableDynamicFileAccess: true },
    extensions: [Migrator],
    migrations: {
      tableName: 'mikro_orm_migrations',
      migrationsList: MIGRATIONS,
      path: 'src/db/migrations',
      pathTs: 'src/db/migrations',
      transactional: true,
      allOrNothing: true,
      disableForeignKeys: false,
      snapshot: options.snapshot ?? false,
      snapshotName: '.snapshot-swipe-authorizer',
      emit: 'ts',
      silent: true,
      fileName: (timestamp: string, name?: string) => `Migration${timestamp}${name ? `_${name}` : ''}`,
    },
    pool: { min: 0, max: poolMax, idleTimeoutMillis: 30_000, acquireTimeoutMillis: 5_000 },
    driverOptions: {
      connection: {
        statement_timeout: statementTimeoutMs,
        connectionTimeoutMillis: 5_000,
        application_name: 'swipe-authorizer',
      },
    },
    allowGlobalContext: false,
    ensureDatabase: false,
    debug: options.debug ?? false,
    forceUtcTimezone: true,
  });
}

/** The knex instance of the ORM's connection: the persister's multi-row upserts run through it. */
export function knexOf(orm: Orm): Knex {
  return orm.em.getConnection().getKnex();
}
