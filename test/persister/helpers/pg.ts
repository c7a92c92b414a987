// Postgres for persister tests: a fresh database per test file on a server
// (the shared one, or a private one started by privatePostgres()).
import { type ChildProcess, execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { knex as makeKnex } from '@mikro-orm/postgresql';
import { runMigrations } from '../../../src/db/migrate.js';
import { createOrm, knexOf, type Orm } from '../../../src/db/orm.js';

export const SHARED_PG = 'postgres://postgres@127.0.0.1:5432/postgres';
const PG_BIN = '/usr/lib/postgresql/15/bin';

export interface TestDb {
  readonly url: string;
  readonly name: string;
  orm: Orm;
  query<T = Record<string, unknown>>(sql: string, bindings?: unknown[]): Promise<T[]>;
  drop(): Promise<void>;
}

function withDb(serverUrl: string, db: string): string {
  const u = new URL(serverUrl);
  u.pathname = `/${db}`;
  return u.toString();
}

async function admin<T>(serverUrl: string, fn: (k: ReturnType<typeof makeKnex>) => Promise<T>): Promise<T> {
  const k = makeKnex({ client: 'pg', connection: serverUrl, pool: { min: 0, max: 1 } });
  try {
    return await fn(k);
  } finally {
    await k.destroy();
  }
}

/** CREATE DATABASE sa_t_<random>, migrated (every migration, contract ones too) unless told not to. */
export async function createTestDb(
  serverUrl = SHARED_PG,
  options: { migrate?: boolean } = {},
): Promise<TestDb> {
  const name = `sa_t_${randomBytes(5).toString('hex')}`;
  await admin(serverUrl, (k) => k.raw(`create database ${name}`));
  const url = withDb(serverUrl, name);
  const orm = await createOrm({ databaseUrl: url, poolMax: 3 });
  if (options.migrate !== false) await runMigrations(orm, { contract: true });
  const db: TestDb = {
    url,
    name,
    orm,
    async query<T>(sql: string, bindings: unknown[] = []) {
      const r = (await knexOf(db.orm).raw(sql, bindings as never)) as { rows: T[] };
      return r.rows;
    },
    async drop() {
      await db.orm.close(true).catch(() => undefined);
      await admin(serverUrl, (k) => k.raw(`drop database if exists ${name} with (force)`)).catch(
        () => undefined,
      );
    },
  };
  return db;
}

export interface PrivatePostgres {
  readonly url: string;
  readonly port: number;
  stop(): void;
  start(): void;
  destroy(): void;
}

/**
 * A private Postgres 15 (initdb + pg_ctl) on `port`, for tests that stop it.
 * Postgres refuses to run as root: as root, the cluster runs as the `postgres`
 * system user via runuser.
 */
export function privatePostgres(port: number): PrivatePostgres {
  const dir = mkdtempSync(join(tmpdir(), 'sa-pg-'));
  chmodSync(dir, 0o777);
  const data = join(dir, 'data');
  const asRoot = process.getuid?.() === 0;
  const run = (cmd: string, args: string[]) => {
    const full = asRoot
      ? ['runuser', ['-u', 'postgres', '--', join(PG_BIN, cmd), ...args]]
      : [join(PG_BIN, cmd), args];
    const r = spawnSync(full[0] as string, full[1] as string[], { encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr || r.stdout}`);
  };
  run('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync']);
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off`;
  const start = () =>
    run('pg_ctl', ['-D', data, '-o', opts, '-l', join(dir, 'log'), '-w', '-t', '30', 'start']);
  const stop = () => run('pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', '30', 'stop']);
  start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    start,
    stop,
    destroy() {
      try {
        stop();
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function hasRunuser(): boolean {
  try {
    execFileSync('id', ['postgres'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export type { ChildProcess };
