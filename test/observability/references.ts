// Which metric names the shipped dashboard and alert rules depend on.
// Shared by metrics-catalogue.test.ts (against metrics.ts, offline) and
// metrics-scrape.test.ts (against the running api and persister).
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import yaml from 'js-yaml';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DASHBOARD_PATH = join(ROOT, 'helm/swipe-authorizer/files/dashboard.json');
export const RULES_PATH = join(ROOT, 'helm/swipe-authorizer/files/prometheus-rules.yaml');
export const RUNBOOK_PATH = join(ROOT, 'docs/runbook.md');
/** The base of the rules file's runbook links; the chart swaps it for metrics.prometheusRule.runbookBaseUrl. */
export const RUNBOOK_BASE_URL = 'https://github.com/example/swipe-authorizer/blob/main/docs/runbook.md';

/**
 * Metrics the dashboard and alerts use that our processes do not export: Prometheus'
 * own target health (`up`) and cAdvisor's container metrics (kubelet). `kube_*`
 * (kube-state-metrics) is external too, should a panel ever use it.
 */
export const EXTERNAL_METRICS: readonly string[] = [
  'up',
  'container_cpu_usage_seconds_total',
  'container_memory_working_set_bytes',
  // redis_exporter beside each Redis node (k8s/base/redis-cluster.yaml); our own
  // redis_* metrics (redis_errors_total, ...) are not in this list.
  'redis_up',
  'redis_cluster_state',
  'redis_memory_used_bytes',
  'redis_memory_max_bytes',
];
/** kube-state-metrics, CloudNativePG's exporter, cert-manager. */
export const EXTERNAL_PREFIXES: readonly string[] = ['kube_', 'cnpg_', 'certmanager_'];

/**
 * The forwarding between regions' metrics (docs/regions.md), which the region alerts use:
 * registered by the forwarding code (branch i21a). Until metrics.ts registers them they are
 * treated as external here; once it does, this list is to be emptied.
 */
export const FORWARDING_METRICS: readonly string[] = [
  'region_forward_total',
  'region_forward_duration_seconds',
  'region_peer_up',
  'region_directory_entries',
  'region_failopen_replays_total',
];

export function isExternal(name: string): boolean {
  return (
    EXTERNAL_METRICS.includes(name) ||
    FORWARDING_METRICS.includes(name) ||
    EXTERNAL_PREFIXES.some((p) => name.startsWith(p))
  );
}

/** PromQL words that look like identifiers but are not metric names. */
const PROMQL_WORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'offset',
  'bool',
  'and',
  'or',
  'unless',
  'inf',
  'nan',
]);

const HISTOGRAM_SUFFIX = /_(bucket|sum|count)$/;

/** Metric names referenced by one PromQL expression (Grafana variables allowed), series suffixes stripped. */
export function metricNamesIn(expr: string): string[] {
  const cleaned = expr
    .replace(/\$\{[^}]*\}|\$\w+/g, ' ') // Grafana variables
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""') // strings
    .replace(/\{[^}]*\}/g, ' ') // label matchers
    .replace(/\[[^\]]*\]/g, ' ') // ranges and subqueries
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' '); // label lists
  const names = new Set<string>();
  for (const m of cleaned.matchAll(/(?<![\w:.])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()/g)) {
    const word = m[1]!;
    if (PROMQL_WORDS.has(word.toLowerCase())) continue;
    names.add(word.replace(HISTOGRAM_SUFFIX, ''));
  }
  return [...names];
}

/** Names in a Grafana variable query: `label_values(metric{...}, label)` uses the metric only. */
export function metricNamesInVariableQuery(query: string): string[] {
  const m = /^\s*label_values\(\s*(.*),\s*[A-Za-z_]\w*\s*\)\s*$/.exec(query);
  if (m) return metricNamesIn(m[1]!);
  if (/^\s*label_values\(\s*[A-Za-z_]\w*\s*\)\s*$/.test(query)) return [];
  return metricNamesIn(query.replace(/^\s*(query_result|label_names|metrics)\(/, '('));
}

export interface DashboardTarget {
  expr: string;
  legendFormat?: string;
  refId: string;
  datasource?: { type?: string; uid?: string };
}
export interface DashboardPanel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  datasource?: { type?: string; uid?: string };
  targets?: DashboardTarget[];
  panels?: DashboardPanel[];
}
export interface DashboardVariable {
  name: string;
  type: string;
  query?: string | { query: string };
  datasource?: { type?: string; uid?: string };
}
export interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  templating: { list: DashboardVariable[] };
  panels: DashboardPanel[];
}

export function loadDashboard(): Dashboard {
  return JSON.parse(readFileSync(DASHBOARD_PATH, 'utf8')) as Dashboard;
}

/** Every panel, rows' nested panels included. */
export function allPanels(d: Dashboard): DashboardPanel[] {
  return d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

export function dashboardExpressions(d: Dashboard = loadDashboard()): string[] {
  return allPanels(d).flatMap((p) => (p.targets ?? []).map((t) => t.expr));
}

export function variableQueries(d: Dashboard = loadDashboard()): string[] {
  return d.templating.list
    .filter((v) => v.type === 'query')
    .map((v) => (typeof v.query === 'string' ? v.query : (v.query?.query ?? '')));
}

export interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
export interface RuleFile {
  groups: { name: string; rules: Rule[] }[];
}

export function loadRules(): RuleFile {
  return yaml.load(readFileSync(RULES_PATH, 'utf8')) as RuleFile;
}

/**
 * The rules file as the chart renders it for one region: the chart replaces
 * __REGION__ (the region absent() selectors and label_replace name) with
 * .Values.region (templates/prometheusrule.yaml).
 */
export function rulesForRegion(region: string): string {
  return readFileSync(RULES_PATH, 'utf8').replaceAll('__REGION__', region);
}

export function ruleExpressions(r: RuleFile = loadRules()): string[] {
  return r.groups.flatMap((g) => g.rules.map((rule) => rule.expr));
}

/** Every metric name the dashboard (panels and variables) and the rules reference, with where it is used. */
export function referencedMetrics(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const add = (names: string[], where: string) => {
    for (const n of names) out.set(n, [...(out.get(n) ?? []), where]);
  };
  const d = loadDashboard();
  for (const p of allPanels(d))
    for (const t of p.targets ?? []) add(metricNamesIn(t.expr), `dashboard: ${p.title}`);
  for (const q of variableQueries(d)) add(metricNamesInVariableQuery(q), `dashboard variable: ${q}`);
  for (const g of loadRules().groups) {
    for (const rule of g.rules) add(metricNamesIn(rule.expr), `rule: ${rule.alert ?? rule.record}`);
  }
  return out;
}
