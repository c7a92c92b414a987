// Plain manifests under k8s/: YAML parses; kubectl (offline only: an empty
// kubeconfig, nothing contacts a server) builds every region with kustomize,
// decodes every built-in object into its typed API struct, and reads every
// file; upgrade.sh is driven with fake helm/kubectl to prove the gate and
// the rollback logic.
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  isObject,
  type JsonObject,
  K8S,
  kubectl,
  listFiles,
  loadYamlDocs,
  offlineEnv,
  read,
  rel,
  run,
} from './helpers.js';

const yamlFiles = listFiles(K8S, /\.ya?ml$/);
const manifests = yamlFiles.filter((f) => basename(f) !== 'kustomization.yaml');
const regions = listFiles(join(K8S, 'regions'), /^kustomization\.yaml$/).map((f) => basename(join(f, '..')));
const tmp = mkdtempSync(join(tmpdir(), 'sa-k8s-'));
const kubeconfig = join(tmp, 'kubeconfig');
writeFileSync(kubeconfig, '');
const env = offlineEnv(kubeconfig);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** CRD kinds kubectl cannot decode offline (no scheme): checked by structure instead. */
const CRDS =
  /no kind "(Cluster|ScheduledBackup|TestRun)" is registered for version "(postgresql\.cnpg\.io|k6\.io)\//;

function decodeErrors(stderr: string): string[] {
  return stderr
    .split('\n')
    .filter(
      (l) => l.includes('unable to decode') || l.includes('error parsing') || l.includes('error converting'),
    )
    .filter((l) => !CRDS.test(l));
}

describe('k8s manifests', () => {
  it('kubectl is installed (the offline checks must not be skipped)', () => {
    const r = run(kubectl(), ['version', '--client'], { env });
    expect(r.status, r.stderr).toBe(0);
  });

  it('cover Redis Cluster, CloudNativePG, the namespace and a k6 TestRun, for three regions', () => {
    expect(regions.sort()).toEqual(['eu-west-1', 'us-east-1', 'us-west-2']);
    const kinds = manifests.flatMap((f) => loadYamlDocs(f).map((d) => (isObject(d) ? d.kind : null)));
    for (const k of ['Namespace', 'StatefulSet', 'Cluster', 'ScheduledBackup', 'TestRun', 'NetworkPolicy']) {
      expect(kinds).toContain(k);
    }
  });

  for (const file of yamlFiles) {
    it(`${rel(file)} parses (every document is a mapping with apiVersion and kind)`, () => {
      const docs = loadYamlDocs(file);
      expect(docs.length).toBeGreaterThan(0);
      for (const d of docs) {
        expect(isObject(d)).toBe(true);
        expect(typeof (d as JsonObject).apiVersion).toBe('string');
        expect(typeof (d as JsonObject).kind).toBe('string');
      }
    });
  }

  for (const file of manifests) {
    it(`${rel(file)} is read by kubectl and its built-in objects decode`, () => {
      const names = run(
        kubectl(),
        ['label', '--local', '-f', file, 'swipe-authorizer.io/check=1', '-o', 'name'],
        { env },
      );
      expect(names.status, names.stderr).toBe(0);
      expect(names.stdout.trim().split('\n').length).toBe(loadYamlDocs(file).length);
      const typed = run(kubectl(), ['set', 'env', '--local', '-f', file, 'SA_CHECK=1', '-o', 'name'], {
        env,
      });
      expect(decodeErrors(typed.stderr)).toEqual([]);
    });
  }

  for (const region of regions) {
    it(`kubectl kustomize k8s/regions/${region} builds, patches apply, objects decode`, () => {
      const r = run(kubectl(), ['kustomize', join(K8S, 'regions', region)], { env });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toContain(`topology.swipe-authorizer.io/region: ${region}`);
      expect(r.stdout).toContain(`destinationPath: s3://swipe-pg-backups-${region}/`);
      expect(r.stdout).not.toContain('REGION');
      const out = join(tmp, `${region}.yaml`);
      writeFileSync(out, r.stdout);
      const typed = run(kubectl(), ['set', 'env', '--local', '-f', out, 'SA_CHECK=1', '-o', 'name'], { env });
      expect(decodeErrors(typed.stderr)).toEqual([]);
    });
  }

  it('the region patch for Redis maxmemory targets the MAXMEMORY env entry', () => {
    const sts = loadYamlDocs(join(K8S, 'base', 'redis-cluster.yaml')).find(
      (d) => isObject(d) && d.kind === 'StatefulSet',
    ) as JsonObject;
    const text = JSON.stringify(sts);
    const env = JSON.parse(text).spec.template.spec.containers[0].env as { name: string }[];
    expect(env[2]?.name).toBe('MAXMEMORY');
  });

  it('the TestRun runs loadtest/gate.js with the labels the api NetworkPolicy admits', () => {
    const [tr] = loadYamlDocs(join(K8S, 'k6', 'testrun.yaml')) as JsonObject[];
    const spec = JSON.parse(JSON.stringify(tr)).spec;
    expect(tr?.apiVersion).toBe('k6.io/v1alpha1');
    expect(spec.script.configMap.file).toBe('gate.js');
    expect(spec.parallelism).toBeGreaterThan(1);
    expect(spec.runner.metadata.labels['app.kubernetes.io/component']).toBe('loadgate');
    expect(spec.runner.image).toMatch(/^grafana\/k6:/);
  });
});

describe('k8s/upgrade.sh (fake helm and kubectl)', () => {
  const script = join(K8S, 'upgrade.sh');
  const log = join(tmp, 'calls.log');
  const fakeHelm = join(tmp, 'helm');
  writeFileSync(
    fakeHelm,
    `#!/usr/bin/env bash
echo "helm $*" >> "${log}"
case "$1" in
  status) [ -n "$FAKE_DEPLOYED" ] || exit 1; printf '{"name":"swipe-authorizer","version":%s,"chart":{"metadata":{"version":"0.1.0"}}}' "$FAKE_DEPLOYED" ;;
  upgrade) exit "\${FAKE_UPGRADE_RC:-0}" ;;
  test) exit "\${FAKE_TEST_RC:-0}" ;;
  rollback) exit 0 ;;
esac
`,
  );
  chmodSync(fakeHelm, 0o755);

  function upgrade(args: string[], fake: Record<string, string>) {
    writeFileSync(log, '');
    const r = run('bash', [script, ...args], {
      env: { ...env, HELM: fakeHelm, KUBECTL: '/bin/false', ...fake },
    });
    return { ...r, calls: readFileSync(log, 'utf8').trim().split('\n').filter(Boolean) };
  }

  it('parses (bash -n)', () => {
    expect(run('bash', ['-n', script]).status).toBe(0);
  });

  it('gate passes: upgrade --install --atomic, then helm test, no rollback', () => {
    const r = upgrade(['us-east-1', '--set', 'image.tag=1.2.3'], { FAKE_DEPLOYED: '4' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.calls[0]).toMatch(/^helm status swipe-authorizer -n swipe-authorizer -o json$/);
    expect(r.calls[1]).toMatch(/^helm upgrade --install swipe-authorizer \S+helm\/swipe-authorizer /);
    expect(r.calls[1]).toMatch(
      /-f \S+values\/us-east-1\.yaml .*--atomic .*--wait .*--set image\.tag=1\.2\.3$/,
    );
    expect(r.calls[2]).toMatch(/^helm test swipe-authorizer -n swipe-authorizer --timeout 15m --logs$/);
    expect(r.calls.some((c) => c.startsWith('helm rollback'))).toBe(false);
  });

  it('gate fails: rolls back to the revision deployed before, exits non-zero', () => {
    const r = upgrade(['us-west-2'], { FAKE_DEPLOYED: '7', FAKE_TEST_RC: '1' });
    expect(r.status).toBe(1);
    expect(r.calls.at(-1)).toMatch(/^helm rollback swipe-authorizer 7 -n swipe-authorizer --wait/);
    expect(r.stderr).toMatch(/gate FAILED: rolling back to revision 7/);
  });

  it('gate fails on a first install: nothing to roll back to, exits non-zero', () => {
    const r = upgrade(['eu-west-1'], { FAKE_DEPLOYED: '', FAKE_TEST_RC: '1' });
    expect(r.status).toBe(1);
    expect(r.calls.some((c) => c.startsWith('helm rollback'))).toBe(false);
    expect(r.stderr).toMatch(/first install/);
  });

  it('upgrade fails: --atomic already rolled back; no gate, no second rollback', () => {
    const r = upgrade(['us-east-1'], { FAKE_DEPLOYED: '3', FAKE_UPGRADE_RC: '1' });
    expect(r.status).toBe(1);
    expect(r.calls.some((c) => c.startsWith('helm test'))).toBe(false);
    expect(r.calls.some((c) => c.startsWith('helm rollback'))).toBe(false);
  });

  it('refuses an unknown region or gate before touching the cluster', () => {
    expect(upgrade(['mars-1'], {}).status).toBe(2);
    expect(upgrade(['us-east-1', '--gate', 'jmeter'], {}).status).toBe(2);
    expect(read(log).trim()).toBe('');
  });
});
