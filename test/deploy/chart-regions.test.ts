// The chart's wiring between regions (docs/regions.md), rendered offline for each
// region's values file: REGION / REGION_PEERS / REGION_FORWARD_TIMEOUT_MS in the
// pods, REGION_SECRETS from a Secret only, the inter-region ingress admitting only
// the peers' CIDRs, the api's egress to those peers only, the alert threshold in
// step with the forward timeout; and the chart's refusals of an incomplete setup.
import { basename } from 'node:path';
import { load } from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { loadRules } from '../observability/references.js';
import { read } from './helpers.js';
import { helmTemplate, loose, named, REGION_FILES } from './render.js';

const RELEASE = 'swipe-authorizer';
const FULL = 'swipe-authorizer';

// biome-ignore lint/suspicious/noExplicitAny: rendered manifests and values read field by field
type Obj = any;

function envOf(objects: Obj[], kind: string, name: string): Record<string, Obj> {
  const [o] = named(objects, kind, name);
  const c = loose(o).spec.template.spec.containers[0];
  return Object.fromEntries((c.env as Obj[]).map((e) => [e.name, e]));
}

describe('chart: regions', () => {
  for (const file of REGION_FILES) {
    const region = basename(file, '.yaml');
    const values = load(read(file)) as Obj;

    it(`${region}: the pods get REGION, the peers, the timeout, and REGION_SECRETS from a Secret`, () => {
      const r = helmTemplate(RELEASE, file);
      expect(r.status, r.stderr).toBe(0);
      const peers = values.regions.peers as Obj[];
      expect(peers.length).toBe(2);
      expect(peers.map((p) => p.name)).not.toContain(region);
      for (const [kind, name] of [
        ['Deployment', `${FULL}-api`],
        ['Deployment', `${FULL}-persister`],
      ]) {
        const env = envOf(r.objects, kind as string, name as string);
        expect(env['REGION']?.value).toBe(region);
        expect(env['REGION_PEERS']?.value).toBe(peers.map((p) => `${p.name}=${p.url}`).join(','));
        expect(env['REGION_FORWARD_TIMEOUT_MS']?.value).toBe(String(values.regions.forwardTimeoutMs));
        expect(env['REGION_SECRETS']?.value).toBeUndefined();
        expect(env['REGION_SECRETS']?.valueFrom?.secretKeyRef).toEqual({
          name: values.regions.secret.name,
          key: 'REGION_SECRETS',
        });
      }
      // No secret of the channel anywhere in the rendered objects' plain values.
      expect(JSON.stringify(r.objects)).not.toMatch(/REGION_SECRETS"?,"value"/);
    });

    it(`${region}: the inter-region ingress admits only the peers, and the api egresses only to them`, () => {
      const r = helmTemplate(RELEASE, file);
      const [ing] = named(r.objects, 'Ingress', `${FULL}-regions`).map(loose);
      const cidrs = (values.regions.peers as Obj[]).map((p) => p.cidr);
      expect(ing.metadata.annotations['nginx.ingress.kubernetes.io/whitelist-source-range']).toBe(
        cidrs.join(','),
      );
      expect(ing.spec.ingressClassName).toBe('nginx-internal');
      expect(ing.spec.tls[0].secretName).toBeTruthy();
      expect(ing.spec.rules[0].host).toBe(values.regions.ingress.host);
      expect(ing.spec.rules[0].http.paths[0].backend.service.name).toBe(`${FULL}-api`);
      const [np] = named(r.objects, 'NetworkPolicy', `${FULL}-api`).map(loose);
      const egressCidrs = (np.spec.egress as Obj[])
        .flatMap((e) => (e.to ?? []).map((t: Obj) => t.ipBlock?.cidr))
        .filter(Boolean);
      expect(egressCidrs).toEqual(cidrs);
      // The peers' hosts are their own inter-region ingress hosts.
      for (const p of values.regions.peers as Obj[]) {
        const theirs = load(read(file.replace(`${region}.yaml`, `${p.name}.yaml`))) as Obj;
        expect(p.url).toBe(`https://${theirs.regions.ingress.host}`);
      }
    });

    it(`${region}: RegionForwardLatencyHigh fires at 80 % of the forward timeout`, () => {
      const rule = loadRules()
        .groups.flatMap((g) => g.rules)
        .find((x) => x.alert === 'RegionForwardLatencyHigh');
      const threshold = Number(/\)\s*>\s*([0-9.]+)\s*$/.exec(rule?.expr ?? '')?.[1]);
      expect(threshold).toBeCloseTo((values.regions.forwardTimeoutMs * 0.8) / 1000, 6);
    });
  }

  it('no peers (the default): REGION only when a region is named, nothing else rendered', () => {
    const r = helmTemplate(RELEASE, null, [
      'secrets.signatureSecrets={0123456789abcdef0}',
      'secrets.apiTokens={0123456789abcdef0}',
    ]);
    expect(r.status, r.stderr).toBe(0);
    const env = envOf(r.objects, 'Deployment', `${FULL}-api`);
    expect(env['REGION']).toBeUndefined();
    expect(env['REGION_PEERS']).toBeUndefined();
    expect(named(r.objects, 'Ingress', `${FULL}-regions`)).toEqual([]);
  });

  const usEast = REGION_FILES.find((f) => f.endsWith('us-east-1.yaml')) as string;
  for (const [what, sets, message] of [
    ['a Secret for REGION_SECRETS', ['regions.secret.name='], 'regions.secret.name'],
    ['the inter-region ingress', ['regions.ingress.enabled=false'], 'regions.ingress'],
    ['a peer other than itself', ['regions.peers[0].name=us-east-1'], 'names this region'],
    ['an https peer URL', ['regions.peers[0].url=http://x'], 'url'],
    ['a timeout within 10..10000 ms', ['regions.forwardTimeoutMs=5'], 'forwardTimeoutMs'],
  ] as const) {
    it(`peers need ${what}`, () => {
      const r = helmTemplate(RELEASE, usEast, [...sets]);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain(message);
    });
  }
});
