// Offline schema validation of every object this repository deploys: the
// chart rendered with its defaults, for each region and as each region's
// canary, and the k8s/ manifests (each region's kustomize output, the k6
// TestRun, the ingress-nginx settings). Built-in kinds validate against the
// Kubernetes OpenAPI schemas shipped in `kubernetes-models`; ServiceMonitor,
// PodMonitor and PrometheusRule against `@kubernetes-models/prometheus-operator`;
// cert-manager's Issuer and Certificate against `@kubernetes-models/cert-manager`.
// CloudNativePG (Cluster, ScheduledBackup) and k6-operator (TestRun) kinds
// have no published models: they are checked for structure only (here and in
// k8s.test.ts). What this does not catch (unknown fields: the models accept
// them; admission and CRD validation) only a cluster proves:
// `kubectl apply --dry-run=server`.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isObject, type JsonObject, K8S, listFiles, loadYamlDocs } from './helpers.js';
import { helmTemplate, kustomize, REGION_FILES } from './render.js';

interface Model {
  validate(): void;
}
type ModelClass = new (data: unknown) => Model;

/** apiVersion -> module of kubernetes-models (or a CRD package) holding its kinds. */
function moduleFor(apiVersion: string): string | null {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  if (group === 'monitoring.coreos.com') return `@kubernetes-models/prometheus-operator/${group}/${version}`;
  if (group === 'cert-manager.io') return `@kubernetes-models/cert-manager/${group}/${version}`;
  if (group === '') return `kubernetes-models/${version}`;
  if (group === 'postgresql.cnpg.io' || group === 'k6.io') return null;
  return `kubernetes-models/${group}/${version}`;
}

/** Kinds without published models: must at least have a name and a spec. */
const STRUCTURE_ONLY = new Set([
  'postgresql.cnpg.io/v1 Cluster',
  'postgresql.cnpg.io/v1 ScheduledBackup',
  'k6.io/v1alpha1 TestRun',
]);

async function validateAll(objects: JsonObject[]): Promise<{ validated: string[]; problems: string[] }> {
  const validated: string[] = [];
  const problems: string[] = [];
  for (const o of objects) {
    const apiVersion = String(o.apiVersion);
    const kind = String(o.kind);
    const name = String((o.metadata as JsonObject | undefined)?.name ?? '?');
    const id = `${apiVersion} ${kind} ${name}`;
    if (STRUCTURE_ONLY.has(`${apiVersion} ${kind}`)) {
      if (!isObject(o.spec) || name === '?') problems.push(`${id}: no metadata.name or spec`);
      validated.push(`${id} (structure)`);
      continue;
    }
    const mod = moduleFor(apiVersion);
    if (mod === null) {
      problems.push(`${id}: no schema known for this kind`);
      continue;
    }
    let cls: ModelClass | undefined;
    try {
      cls = ((await import(mod)) as Record<string, ModelClass>)[kind];
    } catch (err) {
      problems.push(`${id}: cannot load ${mod}: ${(err as Error).message}`);
      continue;
    }
    if (cls === undefined) {
      problems.push(`${id}: ${mod} has no ${kind}`);
      continue;
    }
    try {
      new cls(o).validate();
      validated.push(id);
    } catch (err) {
      problems.push(`${id}: ${(err as Error).message}`);
    }
  }
  return { validated, problems };
}

const CHART_RENDERS: { title: string; release: string; file: string | null; sets: string[] }[] = [
  { title: 'chart defaults (values.yaml)', release: 'swipe-authorizer', file: null, sets: [] },
  {
    title: 'chart defaults with the request-rate HPA metric on',
    release: 'swipe-authorizer',
    file: null,
    sets: ['api.autoscaling.requestRate.enabled=true'],
  },
  ...REGION_FILES.map((f) => ({
    title: `chart, region ${f.split('/').at(-1)}`,
    release: 'swipe-authorizer',
    file: f,
    sets: [],
  })),
  ...REGION_FILES.map((f) => ({
    title: `chart, canary of region ${f.split('/').at(-1)}`,
    release: 'swipe-authorizer-canary',
    file: f,
    sets: ['canary.enabled=true'],
  })),
];

describe('offline schema validation of every rendered object', () => {
  it('the validator rejects a broken object (not vacuous)', async () => {
    const bad = await validateAll([
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'x' },
        spec: { replicas: 'three', selector: {}, template: { spec: { containers: [{ name: 'a' }] } } },
      },
      {
        apiVersion: 'monitoring.coreos.com/v1',
        kind: 'ServiceMonitor',
        metadata: { name: 'y' },
        spec: { endpoints: 'nope' },
      },
      { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'z' } },
    ]);
    expect(bad.problems.length).toBe(3);
    expect(bad.problems.join('\n')).toMatch(/replicas must be integer/);
  });

  for (const r of CHART_RENDERS) {
    it(`${r.title}: every object validates`, async () => {
      const out = helmTemplate(r.release, r.file, r.sets);
      expect(out.status, out.stderr).toBe(0);
      const { validated, problems } = await validateAll(out.objects);
      expect(problems).toEqual([]);
      expect(validated.length).toBe(out.objects.length);
      expect(validated.length).toBeGreaterThan(8);
    });
  }

  for (const region of listFiles(join(K8S, 'regions'), /^kustomization\.yaml$/).map(
    (f) => f.split('/').at(-2) ?? '',
  )) {
    it(`k8s/regions/${region} (kustomize output): every object validates`, async () => {
      const objects = kustomize(region);
      const { validated, problems } = await validateAll(objects);
      expect(problems).toEqual([]);
      expect(validated.length).toBe(objects.length);
      const kinds = new Set(objects.map((o) => o.kind));
      for (const k of ['StatefulSet', 'NetworkPolicy', 'PodMonitor', 'Certificate', 'Issuer', 'Cluster'])
        expect(kinds).toContain(k);
    });
  }

  for (const file of [
    join(K8S, 'k6', 'testrun.yaml'),
    join(K8S, 'ingress-nginx', 'controller-config.yaml'),
  ]) {
    it(`${file.slice(K8S.length - 3)}: every object validates`, async () => {
      const objects = loadYamlDocs(file) as JsonObject[];
      const { validated, problems } = await validateAll(objects);
      expect(problems).toEqual([]);
      expect(validated.length).toBe(objects.length);
    });
  }
});
