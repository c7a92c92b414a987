// metrics.ts registers the binding metric set of ../shared/DESIGN.md with the right
// types and bounded labels; the decision histogram resolves sub-millisecond latency;
// and every metric the dashboard and the alert rules use is one we register (or a
// listed external one). Offline: no service needed. metrics-scrape.test.ts checks
// the same references against the running processes.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createMetrics, LATENCY_BUCKETS_S } from '../../src/observability/metrics.js';
import {
  EXTERNAL_METRICS,
  isExternal,
  metricNamesIn,
  metricNamesInVariableQuery,
  ROOT,
  referencedMetrics,
} from './references.js';

type MetricType = 'counter' | 'gauge' | 'histogram';

/** DESIGN.md, Observability (names binding), plus the circuit-state gauge the dashboard and alerts use. */
const CATALOGUE: Record<string, { type: MetricType; labels: string[] }> = {
  swipe_decisions_total: { type: 'counter', labels: ['decision', 'reason', 'mode'] },
  swipe_decision_duration_seconds: { type: 'histogram', labels: [] },
  swipe_failopen_total: { type: 'counter', labels: ['decision'] },
  swipe_failopen_journal_pending: { type: 'gauge', labels: [] },
  redis_command_duration_seconds: { type: 'histogram', labels: ['script'] },
  redis_errors_total: { type: 'counter', labels: ['kind'] },
  redis_circuit_state: { type: 'gauge', labels: [] },
  wal_pending_entries: { type: 'gauge', labels: ['partition'] },
  persister_events_total: { type: 'counter', labels: ['type'] },
  persister_batch_duration_seconds: { type: 'histogram', labels: [] },
  persister_dead_letters_total: { type: 'counter', labels: [] },
  http_requests_total: { type: 'counter', labels: ['route', 'status'] },
};

/** Label names that would carry unbounded values (ids, amounts, free text). */
const UNBOUNDED_LABELS =
  /shopper|trip|transaction|authorization|idempotency|order|item|amount|merchant|message|^id$|_id$/i;

const DEFAULT_METRICS = [
  'process_cpu_seconds_total',
  'process_resident_memory_bytes',
  'process_start_time_seconds',
  'nodejs_eventloop_lag_p99_seconds',
  'nodejs_heap_size_used_bytes',
  'nodejs_gc_duration_seconds',
  'nodejs_version_info',
];

function labelNamesOf(metric: unknown): string[] {
  return [...((metric as { labelNames?: readonly string[] }).labelNames ?? [])];
}

describe('metrics.ts', () => {
  const metrics = createMetrics();
  const byName = new Map(
    metrics.registry.getMetricsAsArray().map((m) => [(m as unknown as { name: string }).name, m]),
  );

  it('registers every DESIGN.md metric with its type and labels', async () => {
    const json = await metrics.registry.getMetricsAsJSON();
    const types = new Map(json.map((m) => [m.name, String(m.type)]));
    for (const [name, want] of Object.entries(CATALOGUE)) {
      expect(types.get(name), `${name} registered`).toBe(want.type);
      expect(labelNamesOf(byName.get(name)).sort(), `${name} labels`).toEqual([...want.labels].sort());
    }
  });

  it('the catalogue covers every metric named in ../shared/DESIGN.md (when present)', () => {
    const design = join(ROOT, '..', 'shared', 'DESIGN.md');
    if (!existsSync(design)) return; // the binding list above is the checked-in copy
    const text = readFileSync(design, 'utf8');
    const section = text.slice(text.indexOf('## Observability'));
    const end = section.indexOf('\n## ', 4);
    const names = [...(end > 0 ? section.slice(0, end) : section).matchAll(/`([a-z_]+)(?:\{[^`]*\})?`/g)].map(
      (m) => m[1]!,
    );
    expect(names.length).toBeGreaterThan(5);
    for (const n of names) expect(Object.keys(CATALOGUE), `DESIGN.md metric ${n}`).toContain(n);
  });

  it('labels have bounded cardinality (no ids, amounts or free text)', () => {
    for (const [name, metric] of byName) {
      for (const label of labelNamesOf(metric))
        expect(label, `${name}{${label}}`).not.toMatch(UNBOUNDED_LABELS);
    }
  });

  it('swipe_decision_duration_seconds resolves sub-millisecond latency (100 µs .. 1 s)', async () => {
    metrics.decisionDuration.observe(0.0002);
    const text = await metrics.registry.getSingleMetricAsString('swipe_decision_duration_seconds');
    const bounds = [...text.matchAll(/_bucket\{le="([^"]+)"\}/g)]
      .map((m) => m[1]!)
      .filter((b) => b !== '+Inf');
    const numeric = bounds.map(Number);
    expect(numeric.filter((b) => b < 0.001).length).toBeGreaterThanOrEqual(3);
    expect(Math.min(...numeric)).toBeLessThanOrEqual(0.0001);
    expect(Math.max(...numeric)).toBeGreaterThanOrEqual(1);
    expect(numeric).toEqual([...LATENCY_BUCKETS_S]);
    // The 200 µs observation lands below 250 µs, not in a catch-all millisecond bucket.
    expect(text).toMatch(/_bucket\{le="0\.00025"\} 1/);
    expect(text).toMatch(/_bucket\{le="0\.0001"\} 0/);
  });

  it('redis_command_duration_seconds also has sub-millisecond buckets', async () => {
    metrics.redisCommandDuration.observe({ script: 'authorizeSwipe' }, 0.0003);
    const text = await metrics.registry.getSingleMetricAsString('redis_command_duration_seconds');
    expect(text).toMatch(/_bucket\{le="0\.0005",script="authorizeSwipe"\} 1/);
  });

  it('collects default process metrics on the same registry', async () => {
    const names = new Set((await metrics.registry.getMetricsAsJSON()).map((m) => m.name));
    for (const n of DEFAULT_METRICS) expect(names, n).toContain(n);
    const bare = createMetrics({ defaultMetrics: false });
    expect((await bare.registry.getMetricsAsJSON()).map((m) => m.name)).not.toContain(
      'process_cpu_seconds_total',
    );
  });
});

describe('dashboard and alert references', () => {
  const refs = referencedMetrics();

  it('finds the references (parser sanity)', () => {
    expect(refs.size).toBeGreaterThan(10);
    for (const name of Object.keys(CATALOGUE))
      expect([...refs.keys()], `${name} is on the dashboard`).toContain(name);
  });

  it('every referenced metric is registered by metrics.ts or listed as external', async () => {
    const registered = new Set((await createMetrics().registry.getMetricsAsJSON()).map((m) => m.name));
    const missing = [...refs].filter(([n]) => !registered.has(n) && !isExternal(n));
    expect(missing, JSON.stringify(missing, null, 2)).toEqual([]);
  });

  it('every listed external metric is actually used (the list does not rot)', () => {
    for (const n of EXTERNAL_METRICS) expect(refs.has(n), n).toBe(true);
  });
});

describe('PromQL name parser', () => {
  it('ignores functions, keywords, labels, strings, ranges and Grafana variables', () => {
    expect(
      metricNamesIn(
        'histogram_quantile(0.99, sum by (namespace, le) (rate(swipe_decision_duration_seconds_bucket{pod=~"$pod", x="a{b}"}[$__rate_interval])))',
      ),
    ).toEqual(['swipe_decision_duration_seconds']);
    expect(
      metricNamesIn(
        'sum(rate(a_total[5m])) / on (ns) group_left (pod) sum without (le) (b_count offset 1h) > bool 1e3',
      ),
    ).toEqual(['a_total', 'b']);
    expect(metricNamesIn('absent(up{job=~".*persister.*"} == 1) and inf > nan')).toEqual(['up']);
    expect(metricNamesIn('deriv(wal_pending_entries[10m:1m]) and c unless d or e')).toEqual([
      'wal_pending_entries',
      'c',
      'd',
      'e',
    ]);
    expect(
      metricNamesInVariableQuery('label_values(nodejs_version_info{namespace=~"$namespace"}, pod)'),
    ).toEqual(['nodejs_version_info']);
    expect(metricNamesInVariableQuery('label_values(namespace)')).toEqual([]);
  });
});
