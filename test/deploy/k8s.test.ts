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

/**
 * CRD kinds kubectl cannot decode offline (no scheme): PodMonitor and the
 * cert-manager kinds are validated against their schemas in schemas.test.ts;
 * CloudNativePG and k6-operator kinds are checked by structure only.
 */
const CRDS =
  /no kind "(Cluster|ScheduledBackup|TestRun|PodMonitor|Issuer|Certificate)" is registered for version "(postgresql\.cnpg\.io|k6\.io|monitoring\.coreos\.com|cert-manager\.io)\//;

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

  it('the TestRun runs loadtest/gate.js against the canary, with the labels its NetworkPolicy admits', () => {
    const [tr] = loadYamlDocs(join(K8S, 'k6', 'testrun.yaml')) as JsonObject[];
    const spec = JSON.parse(JSON.stringify(tr)).spec;
    expect(tr?.apiVersion).toBe('k6.io/v1alpha1');
    expect(spec.script.configMap.file).toBe('gate.js');
    expect(spec.parallelism).toBeGreaterThan(1);
    expect(spec.runner.metadata.labels['app.kubernetes.io/component']).toBe('loadgate');
    expect(spec.runner.metadata.labels['app.kubernetes.io/instance']).toBe('swipe-authorizer-canary');
    expect(spec.runner.image).toMatch(/^grafana\/k6:/);
    const env = Object.fromEntries(
      (spec.runner.env as { name: string; value?: string }[]).map((e) => [e.name, e.value]),
    );
    expect(env.BASE_URL).toBe('http://swipe-authorizer-canary-api.swipe-authorizer.svc:8080');
    // Production-shaped: round-robin swipes per trip per minute stay below the velocity limit.
    expect((Number(env.GATE_RATE) * 60) / Number(env.GATE_TRIPS)).toBeLessThan(
      Number(env.GATE_MAX_SWIPES_PER_MINUTE),
    );
  });

  it('the TestRun keeps its runner pods for upgrade.sh to read (no cleanup: post)', () => {
    const [tr] = loadYamlDocs(join(K8S, 'k6', 'testrun.yaml')) as JsonObject[];
    expect(JSON.parse(JSON.stringify(tr)).spec.cleanup).toBeUndefined();
  });

  it('every pod the k6-operator starts is admitted by the restricted Pod Security Standard', () => {
    const [tr] = loadYamlDocs(join(K8S, 'k6', 'testrun.yaml')) as JsonObject[];
    const spec = JSON.parse(JSON.stringify(tr)).spec;
    for (const part of ['initializer', 'starter', 'runner']) {
      const pod = spec[part].securityContext;
      const c = spec[part].containerSecurityContext;
      expect(pod?.runAsNonRoot, part).toBe(true);
      expect(pod?.seccompProfile?.type, part).toBe('RuntimeDefault');
      expect(c?.allowPrivilegeEscalation, part).toBe(false);
      expect(c?.capabilities?.drop, part).toEqual(['ALL']);
    }
  });

  it('Redis and Postgres admit only the app components that use them, never the k6 gate', () => {
    const policies = [
      ...loadYamlDocs(join(K8S, 'base', 'redis-cluster.yaml')),
      ...loadYamlDocs(join(K8S, 'base', 'postgres-cnpg.yaml')),
    ].filter((d) => isObject(d) && d.kind === 'NetworkPolicy') as JsonObject[];
    expect(policies.map((p) => (p.metadata as JsonObject).name).sort()).toEqual(['swipe-pg', 'swipe-redis']);
    for (const p of policies) {
      const rules = JSON.parse(JSON.stringify(p)).spec.ingress as {
        from: { podSelector?: { matchLabels?: Record<string, string>; matchExpressions?: unknown[] } }[];
      }[];
      const appPeers = rules
        .flatMap((r) => r.from)
        .filter((f) => f.podSelector?.matchLabels?.['app.kubernetes.io/name'] === 'swipe-authorizer');
      expect(appPeers.length).toBe(1);
      expect(appPeers[0]?.podSelector?.matchExpressions).toEqual([
        { key: 'app.kubernetes.io/component', operator: 'In', values: ['api', 'persister', 'migrations'] },
      ]);
    }
  });

  it('Redis runs TLS only with AUTH from a Secret, certificates from cert-manager', () => {
    const docs = loadYamlDocs(join(K8S, 'base', 'redis-cluster.yaml')) as JsonObject[];
    const conf = String(
      ((docs.find((d) => d.kind === 'ConfigMap') as JsonObject).data as JsonObject)['redis.conf'],
    );
    expect(conf).toMatch(/^port 0$/m);
    expect(conf).toMatch(/^tls-port 6379$/m);
    expect(conf).toMatch(/^tls-cluster yes$/m);
    expect(conf).toMatch(/^include \/run\/redis\/auth\.conf$/m);
    const text = read(join(K8S, 'base', 'redis-cluster.yaml'));
    expect(text).toContain('name: swipe-redis-auth');
    const certs = docs.filter((d) => d.kind === 'Certificate').map((d) => (d.spec as JsonObject).secretName);
    expect(certs).toContain('swipe-redis-tls');
  });

  it('the ingress controller keeps upstream connections for less than the api idle timeout (~10 s)', () => {
    const [cm] = loadYamlDocs(join(K8S, 'ingress-nginx', 'controller-config.yaml')) as JsonObject[];
    const keepalive = Number((cm?.data as JsonObject | undefined)?.['upstream-keepalive-timeout']);
    expect(keepalive).toBeGreaterThan(0);
    expect(keepalive).toBeLessThan(10);
  });
});

describe('k8s/upgrade.sh (fake helm and kubectl): the gate runs on a canary before promotion', () => {
  const script = join(K8S, 'upgrade.sh');
  const log = join(tmp, 'calls.log');
  const fakeHelm = join(tmp, 'helm');
  const fakeKubectl = join(tmp, 'kubectl');
  writeFileSync(
    fakeHelm,
    `#!/usr/bin/env bash
echo "helm $*" >> "${log}"
case "$1" in
  status) [ -n "$FAKE_DEPLOYED" ] || exit 1; printf '{"name":"swipe-authorizer","version":%s,"chart":{"metadata":{"version":"0.1.0"}}}' "$FAKE_DEPLOYED" ;;
  upgrade) case "$*" in *canary.enabled=true*) exit "\${FAKE_CANARY_RC:-0}" ;; *) exit "\${FAKE_PROMOTE_RC:-0}" ;; esac ;;
  test) exit "\${FAKE_TEST_RC:-0}" ;;
  rollback|uninstall) exit 0 ;;
esac
`,
  );
  chmodSync(fakeHelm, 0o755);
  // kubectl for --gate operator: the TestRun finishes, its runners exit with FAKE_RUNNER_CODES.
  writeFileSync(
    fakeKubectl,
    `#!/usr/bin/env bash
echo "kubectl $*" >> "${log}"
case "$*" in
  *"create configmap"*) echo "apiVersion: v1" ;;
  *"apply -f -"*) cat > /dev/null ;; # reads the piped manifest, as kubectl does
  *"get testrun"*) printf finished ;;
  *"get pods"*) printf '%b' "\${FAKE_RUNNER_CODES:-0\\n0\\n}" ;;
esac
exit 0
`,
  );
  chmodSync(fakeKubectl, 0o755);

  function upgrade(args: string[], fake: Record<string, string>) {
    writeFileSync(log, '');
    const r = run('bash', [script, ...args], {
      env: { ...env, HELM: fakeHelm, KUBECTL: '/bin/false', ...fake },
    });
    return { ...r, calls: readFileSync(log, 'utf8').trim().split('\n').filter(Boolean) };
  }
  const promotes = (calls: string[]) =>
    calls.some(
      (c) => c.startsWith('helm upgrade --install swipe-authorizer ') && !c.includes('canary.enabled'),
    );

  it('parses (bash -n)', () => {
    expect(run('bash', ['-n', script]).status).toBe(0);
  });

  it('gate passes: canary release, helm test on it, then promotion, then the canary is removed', () => {
    const r = upgrade(['us-east-1', '--set', 'image.tag=1.2.3'], { FAKE_DEPLOYED: '4' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.calls[0]).toMatch(/^helm status swipe-authorizer -n swipe-authorizer -o json$/);
    expect(r.calls[1]).toMatch(/^helm upgrade --install swipe-authorizer-canary \S+helm\/swipe-authorizer /);
    expect(r.calls[1]).toMatch(
      /-f \S+values\/us-east-1\.yaml .*--atomic .*--wait .*--set image\.tag=1\.2\.3 --set canary\.enabled=true --set canary\.replicas=2$/,
    );
    expect(r.calls[2]).toMatch(
      /^helm test swipe-authorizer-canary -n swipe-authorizer --timeout 15m --logs$/,
    );
    expect(r.calls[3]).toMatch(/^helm upgrade --install swipe-authorizer \S+helm\/swipe-authorizer /);
    expect(r.calls[3]).toMatch(
      /-f \S+values\/us-east-1\.yaml .*--atomic .*--wait .*--set image\.tag=1\.2\.3$/,
    );
    expect(r.calls[4]).toMatch(/^helm uninstall swipe-authorizer-canary -n swipe-authorizer --wait/);
    expect(r.calls.length).toBe(5);
    expect(r.calls.some((c) => c.startsWith('helm rollback'))).toBe(false);
  });

  it('gate fails: the new version is never promoted; the serving release is untouched; exits 1', () => {
    const r = upgrade(['us-west-2'], { FAKE_DEPLOYED: '7', FAKE_TEST_RC: '1' });
    expect(r.status).toBe(1);
    expect(promotes(r.calls)).toBe(false);
    expect(r.calls.some((c) => c.startsWith('helm rollback'))).toBe(false);
    expect(r.calls.at(-1)).toMatch(/^helm uninstall swipe-authorizer-canary /);
    expect(r.stderr).toMatch(/gate FAILED: not promoting; swipe-authorizer keeps serving revision 7/);
  });

  it('gate fails on a first install: nothing is installed but the removed canary', () => {
    const r = upgrade(['eu-west-1'], { FAKE_DEPLOYED: '', FAKE_TEST_RC: '1' });
    expect(r.status).toBe(1);
    expect(promotes(r.calls)).toBe(false);
    expect(r.calls.at(-1)).toMatch(/^helm uninstall swipe-authorizer-canary /);
  });

  it('canary fails to come up: no gate, no promotion, canary removed', () => {
    const r = upgrade(['us-east-1'], { FAKE_DEPLOYED: '3', FAKE_CANARY_RC: '1' });
    expect(r.status).toBe(1);
    expect(r.calls.some((c) => c.startsWith('helm test'))).toBe(false);
    expect(promotes(r.calls)).toBe(false);
    expect(r.calls.at(-1)).toMatch(/^helm uninstall swipe-authorizer-canary /);
  });

  it('promotion fails after a passed gate: --atomic already rolled back; no second rollback; canary removed', () => {
    const r = upgrade(['us-east-1'], { FAKE_DEPLOYED: '3', FAKE_PROMOTE_RC: '1' });
    expect(r.status).toBe(1);
    expect(promotes(r.calls)).toBe(true);
    expect(r.calls.some((c) => c.startsWith('helm rollback'))).toBe(false);
    expect(r.calls.at(-1)).toMatch(/^helm uninstall swipe-authorizer-canary /);
  });

  it('--gate operator: TestRun against the canary, every runner exit code read before the TestRun is deleted', () => {
    const r = upgrade(['us-east-1', '--gate', 'operator'], { FAKE_DEPLOYED: '5', KUBECTL: fakeKubectl });
    expect(r.status, `${r.stderr}\n${r.calls.join('\n')}`).toBe(0);
    expect(r.calls[1]).toMatch(/--set canary\.enabled=true --set canary\.replicas=6$/);
    const apply = r.calls.findIndex((c) => c.includes('apply -f') && c.endsWith('k8s/k6/testrun.yaml'));
    const codes = r.calls.findIndex((c) => c.includes('get pods -l k6_cr=swipe-authorizer-gate,runner=true'));
    const deletes = r.calls.flatMap((c, i) =>
      c.includes('delete testrun swipe-authorizer-gate') ? [i] : [],
    );
    const cleanup = deletes.at(-1) ?? -1;
    expect(apply).toBeGreaterThan(0);
    expect(codes).toBeGreaterThan(apply);
    expect(cleanup).toBeGreaterThan(codes);
    expect(promotes(r.calls)).toBe(true);
  });

  it('--gate operator: one runner over its thresholds (exit 99) fails the gate, no promotion', () => {
    const r = upgrade(['us-east-1', '--gate', 'operator'], {
      FAKE_DEPLOYED: '5',
      KUBECTL: fakeKubectl,
      FAKE_RUNNER_CODES: '0\\n99\\n0\\n0',
    });
    expect(r.status).toBe(1);
    expect(promotes(r.calls)).toBe(false);
    expect(r.stderr, r.stderr).toMatch(/runner exit codes: 0 99 0 0/);
  });

  it('refuses an unknown region or gate before touching the cluster', () => {
    expect(upgrade(['mars-1'], {}).status).toBe(2);
    expect(upgrade(['us-east-1', '--gate', 'jmeter'], {}).status).toBe(2);
    expect(read(log).trim()).toBe('');
  });
});
