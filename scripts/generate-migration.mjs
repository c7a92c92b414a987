#!/usr/bin/env node
// Generates the next MikroORM migration from the entities (src/db/entities.ts)
// against a scratch database, writing it to src/db/migrations/. Usage:
//   npx tsc -p tsconfig.json && node scripts/generate-migration.mjs [name]
// Then add the new class to src/db/migrations/index.ts and commit both.
// DATABASE_URL points at a server where a scratch database can be created.
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { createOrm } = await import(join(root, 'dist/db/orm.js'));
const base = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const scratch = `sa_gen_${randomBytes(4).toString('hex')}`;
const admin = await createOrm({ databaseUrl: base, poolMax: 1 });
await admin.em.getConnection().execute(`create database ${scratch}`);
try {
  const url = new URL(base);
  url.pathname = `/${scratch}`;
  const orm = await createOrm({ databaseUrl: url.toString(), poolMax: 1, snapshot: true });
  try {
    const migrator = orm.getMigrator();
    await migrator.up(); // bring the scratch database to the checked-in state first
    const result = await migrator.createMigration(
      join(root, 'src/db/migrations'),
      false,
      false,
      process.argv[2],
    );
    console.log(result.fileName ? `generated ${result.fileName}` : 'no changes');
  } finally {
    await orm.close(true);
  }
} finally {
  await admin.em.getConnection().execute(`drop database if exists ${scratch}`);
  await admin.close(true);
}
