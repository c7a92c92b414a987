// Static checks of the shipped dashboard, alert rules and runbook: the panels and
// alerts the issue asks for exist, the dashboard is portable (datasource variable,
// namespace/region/pod filters), the rules file is safe to insert raw into a Helm
// template, and every runbook link lands on a section.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  allPanels,
  DASHBOARD_PATH,
  loadDashboard,
  loadRules,
  RULES_PATH,
  RUNBOOK_BASE_URL,
  RUNBOOK_PATH,
} from './references.js';

const ALERTS = [
  'SwipeDecisionLatencyP99High',
  'SwipeDeclineRateSpike',
  'SwipeFailOpenActive',
  'WalLagGrowing',
  'PersisterDeadLetters',
  'PersisterDown',
  'UnknownCardSwipesDropped',
  'HttpErrorRate',
  'RedisCircuitOpen',
  'FailOpenJournalBacklog',
  'ApiUnavailable',
  'HpaAtMaxReplicas',
  'RedisDown',
  'RedisClusterDegraded',
  'RedisMemoryHigh',
  'PostgresInstanceDown',
  'PostgresReplicationLagHigh',
  'PostgresBackupStale',
  'PostgresBackupFailed',
  'CertificateExpiringSoon',
  'CertificateNotReady',
  'RegionPeerUnreachable',
  'RegionForwardLatencyHigh',
];

/** Panel title -> a metric its queries must use. */
const REQUIRED_PANELS: Record<string, string> = {
  'Decisions/s by outcome': 'swipe_decisions_total',
  'Declines/s by reason': 'swipe_decisions_total',
  'Decision latency p50 / p99 / p99.9': 'swipe_decision_duration_seconds_bucket',
  'Fail-open rate (share of decisions)': 'swipe_failopen_total',
  'Fail-open journal backlog': 'swipe_failopen_journal_pending',
  'WAL lag per partition': 'wal_pending_entries',
  'Persister throughput by event type': 'persister_events_total',
  'Dead letters': 'persister_dead_letters_total',
  'Redis errors by kind': 'redis_errors_total',
  'Redis circuit state': 'redis_circuit_state',
  'Pod CPU': 'container_cpu_usage_seconds_total',
  'Pod memory (working set)': 'container_memory_working_set_bytes',
};

// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a JS template.
const DS_UID = '${datasource}';

describe('dashboard.json', () => {
  const d = loadDashboard();
  const panels = allPanels(d);

  it('is a Grafana dashboard with a stable uid and a recent schema', () => {
    expect(d.uid).toBe('swipe-authorizer');
    expect(d.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(readFileSync(DASHBOARD_PATH, 'utf8')).not.toMatch(
      /"uid":\s*"(?!\$\{datasource\}|swipe-authorizer|-- Grafana --)/,
    );
  });

  it('has a prometheus datasource variable and namespace, region, pod filters', () => {
    const vars = new Map(d.templating.list.map((v) => [v.name, v]));
    expect(vars.get('datasource')).toMatchObject({ type: 'datasource', query: 'prometheus' });
    for (const name of ['namespace', 'region', 'pod']) {
      expect(vars.get(name)?.type, name).toBe('query');
      expect(vars.get(name)?.datasource?.uid, name).toBe(DS_UID);
    }
  });

  it('every query panel uses the datasource variable and filters by region and namespace', () => {
    for (const p of panels.filter((x) => x.type !== 'row')) {
      expect(p.datasource?.uid, p.title).toBe(DS_UID);
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets ?? []) {
        expect(t.datasource?.uid, p.title).toBe(DS_UID);
        expect(t.expr, p.title).toContain('region=~"$region", namespace=~"$namespace"');
      }
    }
  });

  it('has the panels SREs asked for', () => {
    const byTitle = new Map(panels.map((p) => [p.title, p]));
    for (const [title, metric] of Object.entries(REQUIRED_PANELS)) {
      const p = byTitle.get(title);
      expect(p, title).toBeDefined();
      expect(p!.targets!.map((t) => t.expr).join('\n'), title).toContain(metric);
    }
    const latency = byTitle.get('Decision latency p50 / p99 / p99.9')!.targets!.map((t) => t.expr);
    for (const q of ['0.5', '0.99', '0.999'])
      expect(latency.some((e) => e.startsWith(`histogram_quantile(${q},`))).toBe(true);
    expect(byTitle.get('Declines/s by reason')!.targets![0]!.expr).toContain('by (reason)');
  });

  it('panel ids are unique and the grid fits 24 columns without overlaps', () => {
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const cells = new Set<string>();
    for (const p of panels) {
      const g = p.gridPos;
      expect(g.x + g.w, p.title).toBeLessThanOrEqual(24);
      for (let x = g.x; x < g.x + g.w; x++) {
        for (let y = g.y; y < g.y + g.h; y++) {
          const key = `${x},${y}`;
          expect(cells.has(key), `${p.title} overlaps at ${key}`).toBe(false);
          cells.add(key);
        }
      }
    }
  });
});

describe('prometheus-rules.yaml', () => {
  const rules = loadRules();
  const alerts = rules.groups.flatMap((g) => g.rules).filter((r) => r.alert !== undefined);
  const runbook = readFileSync(RUNBOOK_PATH, 'utf8');
  const anchors = new Set(
    [...runbook.matchAll(/^#{2,3} (.+)$/gm)].map((m) =>
      m[1]!
        .trim()
        .toLowerCase()
        .replace(/[^\w\- ]/g, '')
        .replace(/ /g, '-'),
    ),
  );

  it('defines exactly the agreed alerts, each once', () => {
    expect(alerts.map((a) => a.alert).sort()).toEqual([...ALERTS].sort());
  });

  it('every alert has severity, summary, description and a runbook section', () => {
    for (const a of alerts) {
      expect(['critical', 'warning'], a.alert).toContain(a.labels?.['severity']);
      expect(a.annotations?.['summary'], a.alert).toBeTruthy();
      expect(a.annotations?.['description'], a.alert).toBeTruthy();
      const anchor = a.alert!.toLowerCase();
      // Absolute: an Alertmanager notification has no repository to be relative to.
      expect(a.annotations?.['runbook_url'], a.alert).toBe(`${RUNBOOK_BASE_URL}#${anchor}`);
      expect(anchors.has(anchor), `runbook section for ${a.alert}`).toBe(true);
    }
  });

  it('every runbook section says what it means, the impact, first checks and mitigations', () => {
    for (const name of ALERTS) {
      const start = runbook.indexOf(`\n## ${name}\n`);
      expect(start, name).toBeGreaterThan(0);
      const next = runbook.indexOf('\n## ', start + 4);
      const section = runbook.slice(start, next > 0 ? next : undefined);
      for (const part of [
        '**What it means.**',
        '**Impact at the till.**',
        '**First checks.**',
        '**Mitigations.**',
      ]) {
        expect(section, `${name}: ${part}`).toContain(part);
      }
    }
  });

  it('every aggregation keeps the region, and every absent() names it', () => {
    for (const r of rules.groups.flatMap((g) => g.rules)) {
      for (const by of r.expr.matchAll(/\bby \(([^)]*)\)/g)) expect(by[1], r.alert).toMatch(/\bregion\b/);
      for (const absent of r.expr.matchAll(/absent\(([^)]*)\)/g))
        expect(absent[1], r.alert).toContain('region="__REGION__"');
      expect(r.expr, r.alert).not.toMatch(/\bby \(namespace\)/);
    }
  });

  it('contains no Go-template braces (the chart inserts the file raw)', () => {
    expect(readFileSync(RULES_PATH, 'utf8')).not.toMatch(/\{\{|\}\}/);
  });
});
