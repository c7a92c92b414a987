// Render checks (helm template, offline) for what only the rendered objects
// show: the HPA's metrics, the NetworkPolicies' peers, the startup probe
// against the boot hydrate budget, the ingress keep-alive, the gate's load
// shape, Redis AUTH/TLS wiring, the canary release and the region in the
// alert rules. The chart's refusals (helm template fails) are checked too.
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { load } from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { rulesForRegion } from '../observability/references.js';
import { type JsonObject, ROOT } from './helpers.js';
import { helmTemplate, loose, named, REGION_FILES } from './render.js';

const REL = 'swipe-authorizer';
const regions = REGION_FILES.map((f) => ({ file: f, region: basename(f).replace(/\.ya?ml$/, '') }));

function render(file: string | null, sets: string[] = [], release = REL): JsonObject[] {
  const r = helmTemplate(release, file, sets);
  expect(r.status, r.stderr).toBe(0);
  return r.objects;
}

function refuses(sets: string[], message: RegExp, release = REL, file: string | null = null): void {
  const r = helmTemplate(release, file, sets);
  expect(r.status, `expected helm template to fail for ${sets.join(' ')}`).not.toBe(0);
  expect(r.stderr).toMatch(message);
}

function container(objects: JsonObject[], kind: string, name: string) {
  const o = loose(named(objects, kind, name)[0]);
  expect(o, `${kind} ${name}`).toBeDefined();
  return { pod: o.spec.template.spec, c: o.spec.template.spec.containers[0] };
}

describe('HPA', () => {
  it('scales on CPU only by default: no dependency on prometheus-adapter', () => {
    for (const { file } of [{ file: null }, ...regions]) {
      const hpa = loose(named(render(file), 'HorizontalPodAutoscaler')[0]);
      expect(hpa.spec.metrics.map((m: { type: string }) => m.type)).toEqual(['Resource']);
    }
  });

  it('adds the request-rate Pods metric only when asked (with the adapter)', () => {
    const hpa = loose(
      named(render(null, ['api.autoscaling.requestRate.enabled=true']), 'HorizontalPodAutoscaler')[0],
    );
    expect(hpa.spec.metrics.map((m: { type: string }) => m.type)).toEqual(['Resource', 'Pods']);
  });
});

describe('NetworkPolicies', () => {
  for (const { file, region } of regions) {
    it(`${region}: the api reaches Redis and Postgres (boot hydrate); the gate reaches only DNS and the api`, () => {
      const objects = render(file);
      const api = loose(named(objects, 'NetworkPolicy', `${REL}-api`)[0]);
      const egressPorts = api.spec.egress.flatMap((e: { ports?: { port: number }[] }) =>
        (e.ports ?? []).map((p) => p.port),
      );
      expect(egressPorts).toEqual(expect.arrayContaining([53, 6379, 5432]));
      const gate = loose(named(objects, 'NetworkPolicy', `${REL}-loadgate`)[0]);
      expect(gate.spec.podSelector.matchLabels['app.kubernetes.io/component']).toBe('loadgate');
      const gatePorts = gate.spec.egress.flatMap((e: { ports?: { port: number }[] }) =>
        (e.ports ?? []).map((p) => p.port),
      );
      expect(gatePorts.sort()).toEqual([53, 53, 8080]);
      expect(gate.spec.egress[1].to[0].podSelector.matchLabels['app.kubernetes.io/component']).toBe('api');
    });
  }
});

describe('api startup probe and the boot hydrate budget', () => {
  const cli = readFileSync(join(ROOT, 'src', 'cli.ts'), 'utf8');
  const hydrateMs = Number(
    /async function hydrateAtBoot[\s\S]*?const timeoutMs = ([\d_]+);/.exec(cli)?.[1]?.replace(/_/g, ''),
  );

  it('the chart knows the hydrate budget src/cli.ts uses', () => {
    expect(hydrateMs).toBe(120_000);
    const helpers = readFileSync(join(ROOT, 'helm/swipe-authorizer/templates/_helpers.tpl'), 'utf8');
    expect(helpers).toContain(`define "swipe-authorizer.bootHydrateBudgetS" -}}${hydrateMs / 1000}{{- end`);
  });

  for (const { file, region } of regions) {
    it(`${region}: periodSeconds x failureThreshold covers the boot hydrate`, () => {
      const { c } = container(render(file), 'Deployment', `${REL}-api`);
      expect(c.startupProbe.periodSeconds * c.startupProbe.failureThreshold).toBeGreaterThanOrEqual(
        hydrateMs / 1000 + 10,
      );
    });
  }

  it('the chart refuses a startup budget below the hydrate budget', () => {
    refuses(['api.probes.startup.failureThreshold=30'], /less than the boot hydrate budget/);
  });
});

describe('ingress keep-alive below the api idle timeout', () => {
  for (const { file, region } of regions) {
    it(`${region}: every Ingress records an upstream keep-alive under 10 s, as the controller config sets`, () => {
      const ingresses = named(render(file), 'Ingress').map(loose);
      expect(ingresses.length).toBeGreaterThan(0);
      const controller = load(
        readFileSync(join(ROOT, 'k8s/ingress-nginx/controller-config.yaml'), 'utf8'),
      ) as {
        data: Record<string, string>;
      };
      for (const i of ingresses) {
        const s = Number(i.metadata.annotations['swipe-authorizer.io/upstream-keepalive-timeout-s']);
        expect(s).toBeLessThan(10);
        expect(String(s)).toBe(controller.data['upstream-keepalive-timeout']);
      }
    });
  }

  it('the chart refuses 10 s or more', () => {
    // 10 is outside the schema too; helm reports whichever check runs first.
    refuses(['ingress.upstreamKeepaliveTimeoutS=10'], /upstreamKeepaliveTimeoutS/);
  });
});

describe('load gate shape', () => {
  for (const { file, region } of regions) {
    it(`${region}: round-robin storm swipes stay under the velocity limit per trip`, () => {
      const objects = render(file);
      const gate = loose(named(objects, 'Pod', `${REL}-k6-gate`)[0]);
      const env = Object.fromEntries(
        gate.spec.containers[0].env
          .filter((e: { value?: string }) => e.value !== undefined)
          .map((e: { name: string; value: string }) => [e.name, e.value]),
      );
      const perTripPerMin = (Number(env.GATE_RATE) * 60) / Number(env.GATE_TRIPS);
      expect(perTripPerMin).toBeLessThan(Number(env.GATE_MAX_SWIPES_PER_MINUTE));
      expect(env.GATE_MAX_SWIPES_PER_MINUTE).toBe('10');
    });
  }

  it('the chart refuses too few trips for the rate (the old 2-trips-per-swipe/s mix)', () => {
    refuses(['loadGate.rate=400', 'loadGate.trips=800'], /too few for loadGate.rate/);
  });

  it('the values comment says what the storm does to each trip', () => {
    const values = readFileSync(join(ROOT, 'helm/swipe-authorizer/values.yaml'), 'utf8');
    expect(values).toMatch(/each trip gets\s+# rate x 60 \/ trips swipes a minute/);
  });
});

describe('Redis AUTH and TLS', () => {
  for (const { file, region } of regions) {
    it(`${region}: api, persister and migrations get the password from a Secret, TLS on, the CA mounted`, () => {
      const objects = render(file);
      for (const [kind, name] of [
        ['Deployment', `${REL}-api`],
        ['Deployment', `${REL}-persister`],
        ['Job', `${REL}-migrate`],
      ] as const) {
        const { pod, c } = container(objects, kind, name);
        const env = Object.fromEntries(c.env.map((e: { name: string }) => [e.name, e]));
        expect(env.REDIS_PASSWORD.valueFrom.secretKeyRef, name).toEqual({
          name: 'swipe-redis-auth',
          key: 'password',
        });
        expect(env.REDIS_TLS.value, name).toBe('true');
        expect(env.REDIS_TLS_CA_FILE.value, name).toBe('/etc/swipe-authorizer/redis-tls/ca.crt');
        expect(
          c.volumeMounts.some(
            (m: { mountPath: string }) => m.mountPath === '/etc/swipe-authorizer/redis-tls',
          ),
        ).toBe(true);
        expect(pod.volumes.find((v: { name: string }) => v.name === 'redis-tls-ca').secret.secretName).toBe(
          'swipe-redis-tls',
        );
      }
    });
  }

  it('both can be turned off (a dev Redis): no password env, REDIS_TLS false, no CA volume', () => {
    const { pod, c } = container(
      render(null, ['redis.auth.enabled=false', 'redis.tls.enabled=false']),
      'Deployment',
      `${REL}-api`,
    );
    const names = c.env.map((e: { name: string }) => e.name);
    expect(names).not.toContain('REDIS_PASSWORD');
    expect(c.env.find((e: { name: string }) => e.name === 'REDIS_TLS').value).toBe('false');
    expect(pod.volumes.map((v: { name: string }) => v.name)).not.toContain('redis-tls-ca');
  });
});

describe('canary release', () => {
  for (const { file, region } of regions) {
    it(`${region}: new api pods behind their own Service, the gate pointed at it, nothing that takes traffic`, () => {
      const objects = render(file, ['canary.enabled=true'], `${REL}-canary`);
      const kinds = objects.map((o) => o.kind);
      for (const k of ['Ingress', 'HorizontalPodAutoscaler', 'PodDisruptionBudget', 'PrometheusRule'])
        expect(kinds).not.toContain(k);
      expect(named(objects, 'Deployment').map((d) => (d.metadata as JsonObject).name)).toEqual([
        `${REL}-canary-api`,
      ]);
      const svc = loose(named(objects, 'Service', `${REL}-canary-api`)[0]);
      expect(svc.spec.selector['app.kubernetes.io/instance']).toBe(`${REL}-canary`);
      const dep = loose(named(objects, 'Deployment', `${REL}-canary-api`)[0]);
      expect(dep.spec.replicas).toBe(2);
      expect(dep.spec.template.metadata.labels['swipe-authorizer.io/track']).toBe('canary');
      const gate = loose(named(objects, 'Pod', `${REL}-canary-k6-gate`)[0]);
      const baseUrl = gate.spec.containers[0].env.find((e: { name: string }) => e.name === 'BASE_URL').value;
      expect(baseUrl).toBe(`http://${REL}-canary-api.swipe-authorizer.svc:8080`);
      expect(kinds).toContain('Job'); // migrations run before the canary starts
    });
  }

  it('the stable release labels its pods stable and keeps its Ingress', () => {
    const objects = render(REGION_FILES[0] ?? null);
    const dep = loose(named(objects, 'Deployment', `${REL}-api`)[0]);
    expect(dep.spec.template.metadata.labels['swipe-authorizer.io/track']).toBe('stable');
    expect(objects.map((o) => o.kind)).toContain('Ingress');
  });

  it('refuses canary.enabled in a release whose name does not end in -canary', () => {
    refuses(['canary.enabled=true'], /ends in -canary/);
  });
});

describe('PrometheusRule', () => {
  for (const { file, region } of regions) {
    it(`${region}: the rules file with the region filled in and absolute runbook links`, () => {
      const rule = loose(named(render(file), 'PrometheusRule')[0]);
      const text = JSON.stringify(rule.spec);
      expect(text).not.toContain('__REGION__');
      expect(text).toContain(`region=\\"${region}\\"`);
      const expected = load(rulesForRegion(region)) as JsonObject;
      expect(rule.spec).toEqual(expected);
    });
  }

  it('runbook_url takes the configured base', () => {
    const base = 'https://runbooks.internal.example/swipe';
    const rule = loose(
      named(render(null, [`metrics.prometheusRule.runbookBaseUrl=${base}`]), 'PrometheusRule')[0],
    );
    const urls = rule.spec.groups.flatMap(
      (g: { rules: { alert?: string; annotations?: { runbook_url: string } }[] }) =>
        g.rules.filter((r) => r.alert).map((r) => [r.alert, r.annotations?.runbook_url]),
    );
    expect(urls.length).toBeGreaterThan(15);
    for (const [alert, url] of urls) expect(url).toBe(`${base}#${String(alert).toLowerCase()}`);
  });
});
