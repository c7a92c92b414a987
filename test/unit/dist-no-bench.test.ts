// The build output holds no benchmark code: `npm run build` empties dist/ and
// compiles src/ only (bench/ builds on its own, to .bench-build/). The static
// side (nothing in src/ imports bench/) is in test/deploy/docker.test.ts.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';

const DIST = join(import.meta.dirname, '..', '..', 'dist');

test.runIf(existsSync(join(DIST, 'cli.js')))('a built dist/ holds no bench code', () => {
  const files = readdirSync(DIST, { recursive: true, encoding: 'utf8' });
  expect(files.filter((f) => /bench/i.test(f))).toEqual([]);
});
