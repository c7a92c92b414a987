// The function-length check (scripts/function-lengths.mjs): no function in src/ longer than
// 70 lines unless it is on the script's allow-list, and the check does fail on a long one.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';

const SCRIPT = resolve('scripts/function-lengths.mjs');

function check(cwd: string, ...args: string[]) {
  const run = spawnSync(process.execPath, [SCRIPT, ...args], { cwd, encoding: 'utf8' });
  return { status: run.status, out: run.stdout, err: run.stderr };
}

describe('function lengths', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'function-lengths-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  test('src/ has no function over 70 lines outside the allow-list', () => {
    const { status, err } = check(process.cwd(), 'src');
    expect(err).toBe('');
    expect(status).toBe(0);
  });

  test('a 71-line function in src/ fails the check, a 70-line one and a long test do not', () => {
    mkdirSync(join(scratch, 'src'));
    mkdirSync(join(scratch, 'test'));
    const body = (n: number) => Array.from({ length: n - 2 }, (_, i) => `  const v${i} = ${i};`).join('\n');
    writeFileSync(join(scratch, 'src', 'short.ts'), `export function fits() {\n${body(70)}\n}\n`);
    writeFileSync(join(scratch, 'test', 'long.ts'), `export const helper = () => {\n${body(90)}\n};\n`);
    expect(check(scratch).status).toBe(0);

    writeFileSync(join(scratch, 'src', 'long.ts'), `class C {\n  tooLong() {\n${body(71)}\n  }\n}\n`);
    const { status, out, err } = check(scratch);
    expect(status).toBe(1);
    expect(out).toMatch(/^\s+71 {2}src\/long\.ts {2}tooLong$/m);
    expect(out).toMatch(/90 {2}test\/long\.ts {2}helper {2}\(test\)/);
    expect(err).toMatch(/1 function\(s\) in src\/ over 70 lines/);
  });
});
