// Every variable loadConfig() reads is in the README's configuration table: the
// table is what an SRE reads, and a name missing there is a setting nobody knows.
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';

const ROOT = new URL('../../', import.meta.url);

it('the README configuration table names every variable the config reads', () => {
  const source = readFileSync(new URL('src/config/config.ts', ROOT), 'utf8');
  const readme = readFileSync(new URL('README.md', ROOT), 'utf8');
  const names = [...source.matchAll(/r\.(?:str|int|bool|list)\('([A-Z0-9_]+)'/g)].map((m) => m[1] as string);
  expect(names.length).toBeGreaterThan(40);
  const table = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('## Endpoints'));
  expect(names.filter((n) => !table.includes(`\`${n}\``))).toEqual([]);
});
