// The Dockerfile cannot be built here (no docker engine): check its shape,
// and that .dockerignore keeps every input the build stages COPY.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { read, ROOT } from './helpers.js';

const dockerfile = read(join(ROOT, 'Dockerfile'));
const instructions = dockerfile
  .replace(/\\\n/g, ' ')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));

/** Docker's .dockerignore rules, enough for the patterns we use (no `**` in the middle). */
function ignored(path: string, patterns: string[]): boolean {
  let out = false;
  for (const raw of patterns) {
    const neg = raw.startsWith('!');
    const p = (neg ? raw.slice(1) : raw).replace(/^\/+|\/+$/g, '');
    const re = new RegExp(
      `^${p
        .split('/')
        .map((seg) =>
          seg === '**'
            ? '.*'
            : seg
                .replace(/[.+^${}()|[\]\\]/g, '\\$&')
                .replace(/\*/g, '[^/]*')
                .replace(/\?/g, '[^/]'),
        )
        .join('/')}(/.*)?$`,
    );
    if (re.test(path)) out = !neg;
  }
  return out;
}

describe('Dockerfile', () => {
  it('is multi-stage on node:20-bookworm-slim (glibc for uWebSockets.js), never alpine', () => {
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:20-bookworm-slim$/m);
    const froms = instructions.filter((l) => l.startsWith('FROM '));
    expect(froms.length).toBeGreaterThanOrEqual(3);
    for (const f of froms) expect(f).toMatch(/^FROM \$\{NODE_IMAGE\} AS \w+$/);
    for (const l of instructions.filter((i) => /^(FROM|ARG) /.test(i))) expect(l).not.toMatch(/alpine/i);
  });

  it('installs production dependencies only into the runtime image', () => {
    expect(instructions.some((l) => /npm ci --omit=dev/.test(l))).toBe(true);
    expect(dockerfile).toMatch(/COPY --from=deps \/app\/node_modules \.\/node_modules/);
    expect(dockerfile).toMatch(/COPY --from=build \/app\/dist \.\/dist/);
    expect(dockerfile).toMatch(/RUN npm run build/);
  });

  it('runs as a non-root numeric user under tini, serve by default, with a healthcheck', () => {
    const lastFrom = instructions.map((l) => l.startsWith('FROM ')).lastIndexOf(true);
    const runtime = instructions.slice(lastFrom).join('\n');
    expect(runtime).toMatch(/apt-get install -y --no-install-recommends tini/);
    expect(runtime).toMatch(/^USER 1000:1000$/m);
    expect(runtime).toMatch(/^ENTRYPOINT \["\/usr\/bin\/tini", "--", "node", "dist\/cli\.js"\]$/m);
    expect(runtime).toMatch(/^CMD \["serve"\]$/m);
    expect(runtime).toMatch(/^HEALTHCHECK .*\/healthz/m);
    expect(runtime).toMatch(/FAILOPEN_JOURNAL_PATH=\/var\/lib\/swipe-authorizer\/failopen\.jsonl/);
  });

  it('.dockerignore keeps every build input and drops the heavy/secret ones', () => {
    const patterns = read(join(ROOT, '.dockerignore'))
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    const copied = instructions
      .filter((l) => l.startsWith('COPY ') && !l.includes('--from='))
      .flatMap((l) =>
        l
          .replace(/^COPY\s+(--\S+\s+)*/, '')
          .split(/\s+/)
          .slice(0, -1),
      );
    expect([...new Set(copied)].sort()).toEqual([
      'lua',
      'package-lock.json',
      'package.json',
      'scripts',
      'src',
      'tsconfig.json',
    ]);
    for (const input of [...copied, 'src/cli.ts', 'scripts/build-lua.mjs', 'lua/authorizeSwipe-4.lua']) {
      expect(existsSync(join(ROOT, input)), `${input} exists`).toBe(true);
      expect(ignored(input, patterns), `${input} must not be in .dockerignore`).toBe(false);
    }
    for (const dropped of [
      'node_modules',
      'node_modules/x/y.js',
      '.git',
      'dist/cli.js',
      '.env',
      'test/unit/a.test.ts',
      'bench/run.ts',
      '.bench-build/bench/run.js',
    ]) {
      expect(ignored(dropped, patterns), `${dropped} should be ignored`).toBe(true);
    }
  });

  it('ships no benchmark code: nothing in src/ is or imports bench tooling (bench/ builds on its own)', () => {
    const offenders: string[] = [];
    const walk = (dir: string) => {
      for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
        const rel = `${dir}/${e.name}`;
        if (e.isDirectory()) walk(rel);
        else if (rel.endsWith('.ts') && /from '(\.\.\/)+bench\//.test(read(join(ROOT, rel))))
          offenders.push(rel);
      }
    };
    walk('src');
    expect(offenders).toEqual([]);
    expect(existsSync(join(ROOT, 'src/bench'))).toBe(false);
  });
});
