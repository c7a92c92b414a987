// Cross-region Postgres (docs/regions.md "Losing a region"), checked offline on
// what `kubectl kustomize k8s/regions/<region>` builds. kubernetes-models has no
// CloudNativePG schema, so the replica cluster is checked by structure: replica
// mode on, its source an external cluster that is another region's exposed
// primary, bootstrapped from it, with the client certificate Secrets; every
// region's data is kept by exactly one other region; the exposed primary admits
// only the region holding its replica.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { K8S, kubectl, loadYamlDocs, offlineEnv, run } from './helpers.js';

const REGIONS = ['eu-west-1', 'us-east-1', 'us-west-2'];
const tmp = mkdtempSync(join(tmpdir(), 'sa-k8s-regions-'));
const kubeconfig = join(tmp, 'kubeconfig');
writeFileSync(kubeconfig, '');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// biome-ignore lint/suspicious/noExplicitAny: structural checks on parsed YAML
type Obj = any;

function build(region: string): Obj[] {
  const r = run(kubectl(), ['kustomize', join(K8S, 'regions', region)], { env: offlineEnv(kubeconfig) });
  expect(r.status, r.stderr).toBe(0);
  const file = join(tmp, `${region}.yaml`);
  writeFileSync(file, r.stdout);
  return loadYamlDocs(file) as Obj[];
}

const built = new Map(REGIONS.map((r) => [r, build(r)]));
const replicaOf = (objs: Obj[]) => objs.filter((o) => o.kind === 'Cluster' && o.spec?.replica !== undefined);

describe('CloudNativePG replica clusters between regions', () => {
  for (const region of REGIONS) {
    it(`${region}: one replica cluster of another region's primary, structurally complete`, () => {
      const objs = built.get(region) as Obj[];
      const replicas = replicaOf(objs);
      expect(replicas.length).toBe(1);
      const c = replicas[0];
      const source = c.spec.replica.source as string;
      expect(REGIONS).toContain(source);
      expect(source).not.toBe(region);
      expect(c.apiVersion).toBe('postgresql.cnpg.io/v1');
      expect(c.metadata.name).toBe(`swipe-pg-replica-${source}`);
      expect(c.metadata.namespace).toBe('swipe-authorizer');
      expect(c.spec.replica.enabled).toBe(true);
      expect(c.spec.bootstrap.pg_basebackup.source).toBe(source);
      const ext = (c.spec.externalClusters as Obj[]).find((e) => e.name === source);
      expect(ext.connectionParameters).toMatchObject({
        host: `swipe-pg-peers.${source}.swipe.internal`,
        user: 'streaming_replica',
        sslmode: 'verify-full',
      });
      expect(ext.sslKey).toEqual({ name: `swipe-pg-${source}-replication`, key: 'tls.key' });
      expect(ext.sslCert).toEqual({ name: `swipe-pg-${source}-replication`, key: 'tls.crt' });
      expect(ext.sslRootCert).toEqual({ name: `swipe-pg-${source}-ca`, key: 'ca.crt' });
      expect(ext.barmanObjectStore.destinationPath).toBe(`s3://swipe-pg-backups-${source}/`);
      expect(c.spec.instances).toBeGreaterThanOrEqual(2);
      expect(typeof c.spec.storage.size).toBe('string');
      // The promoted replica is read by region-takeover from an api pod, and by nothing else of the app.
      const policy = objs.find((o) => o.kind === 'NetworkPolicy' && o.metadata.name === c.metadata.name);
      expect(policy.spec.podSelector.matchLabels).toEqual({ 'cnpg.io/cluster': c.metadata.name });
      const app = (policy.spec.ingress as Obj[])
        .flatMap((r) => r.from)
        .filter((f) => f.podSelector?.matchLabels?.['app.kubernetes.io/name'] === 'swipe-authorizer');
      expect(app.map((f) => f.podSelector.matchLabels['app.kubernetes.io/component'])).toEqual(['api']);
    });
  }

  it("every region's data is kept by exactly one other region, which alone reaches its primary", () => {
    const holderOf = new Map<string, string>();
    for (const [region, objs] of built) {
      const source = replicaOf(objs)[0].spec.replica.source as string;
      expect(holderOf.has(source)).toBe(false);
      holderOf.set(source, region);
    }
    expect([...holderOf.keys()].sort()).toEqual(REGIONS);
    for (const [region, objs] of built) {
      expect(holderOf.get(region)).not.toBe(region);
      const svc = objs.find((o) => o.kind === 'Service' && o.metadata.name === 'swipe-pg-peers');
      expect(svc.spec.type).toBe('LoadBalancer');
      expect(svc.metadata.annotations['service.beta.kubernetes.io/aws-load-balancer-scheme']).toBe(
        'internal',
      );
      expect(svc.spec.selector).toEqual({ 'cnpg.io/cluster': 'swipe-pg', 'cnpg.io/instanceRole': 'primary' });
      const policy = objs.find((o) => o.kind === 'NetworkPolicy' && o.metadata.name === 'swipe-pg-peers');
      const cidrs = (policy.spec.ingress as Obj[]).flatMap((r) => r.from.map((f: Obj) => f.ipBlock?.cidr));
      expect(cidrs).toEqual(svc.spec.loadBalancerSourceRanges);
    }
  });
});
