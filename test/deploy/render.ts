// Renders the chart (helm template, offline) and the k8s/ kustomize overlays
// into parsed objects, for the schema validation and the render checks.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAll } from 'js-yaml';
import {
  CHART,
  helmBin,
  isObject,
  type JsonObject,
  K8S,
  kubectl,
  listFiles,
  offlineEnv,
  run,
} from './helpers.js';

const kubeconfig = join(mkdtempSync(join(tmpdir(), 'sa-render-')), 'kubeconfig');
writeFileSync(kubeconfig, '');
export const OFFLINE = offlineEnv(kubeconfig);
export const KUBE_VERSION = '1.29.0';
export const REGION_FILES = listFiles(join(CHART, 'values'), /\.ya?ml$/);

export interface Rendered {
  status: number | null;
  stderr: string;
  objects: JsonObject[];
}

function parse(text: string): JsonObject[] {
  return loadAll(text).filter((d): d is JsonObject => isObject(d));
}

/** `helm template <release> <chart> -n swipe-authorizer [-f file] [--set ...]`. */
export function helmTemplate(release: string, valuesFile: string | null, sets: string[] = []): Rendered {
  const args = ['template', release, CHART, '-n', 'swipe-authorizer', '--kube-version', KUBE_VERSION];
  if (valuesFile) args.push('-f', valuesFile);
  for (const s of sets) args.push('--set', s);
  const r = run(helmBin(), args, { env: OFFLINE });
  return { status: r.status, stderr: r.stderr, objects: r.status === 0 ? parse(r.stdout) : [] };
}

export function kustomize(region: string): JsonObject[] {
  const r = run(kubectl(), ['kustomize', join(K8S, 'regions', region)], { env: OFFLINE });
  if (r.status !== 0) throw new Error(`kubectl kustomize ${region}: ${r.stderr}`);
  return parse(r.stdout);
}

export function named(objects: JsonObject[], kind: string, name?: string): JsonObject[] {
  return objects.filter(
    (o) => o.kind === kind && (name === undefined || (o.metadata as JsonObject | undefined)?.name === name),
  );
}

/** A plain deep copy typed loosely, for reading nested fields in assertions. */
// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are read field by field in tests.
export function loose(o: unknown): any {
  return JSON.parse(JSON.stringify(o));
}
