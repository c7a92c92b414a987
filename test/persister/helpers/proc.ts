// Child processes for persister tests: the persister runs from dist/ (so it
// can be SIGKILLed like in production); dist is rebuilt when src is newer.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..', '..');
/** The real binary: `node dist/cli.js persist|hydrate|migrate`, as in production. */
export const PERSISTER_MAIN = join(ROOT, 'dist', 'cli.js');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const s = statSync(p);
    newest = Math.max(newest, s.isDirectory() ? newestMtime(p) : s.mtimeMs);
  }
  return newest;
}

/** Builds dist/ (Lua + tsc) when dist/cli.js is missing or older than src/ or lua/. */
export function ensureBuilt(): void {
  let built = 0;
  try {
    built = statSync(PERSISTER_MAIN).mtimeMs;
  } catch {
    built = 0;
  }
  const sources = Math.max(newestMtime(join(ROOT, 'src')), newestMtime(join(ROOT, 'lua')));
  if (built > sources) return;
  spawnSync(process.execPath, [join(ROOT, 'scripts', 'build-lua.mjs')], {
    cwd: ROOT,
    stdio: 'ignore',
    timeout: 60_000,
  });
  spawnSync(
    process.execPath,
    [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'],
    {
      cwd: ROOT,
      stdio: 'ignore',
      timeout: 180_000,
    },
  );
  statSync(PERSISTER_MAIN);
}

export interface Child {
  readonly proc: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
}

export function spawnPersister(env: Record<string, string>, command = 'persist'): Child {
  const proc = spawn(process.execPath, [PERSISTER_MAIN, command], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'test', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (b: Buffer) => {
    out = (out + b.toString()).slice(-20_000);
  };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.once('exit', (code, signal) => resolve({ code, signal }));
  });
  return { proc, exited, output: () => out };
}
