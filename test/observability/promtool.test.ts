// The alert rules pass `promtool check rules` and their unit tests
// (test/observability/rules.test.yaml) pass `promtool test rules`. promtool comes
// from Debian's `prometheus` package: scripts/install-promtool.sh. This test fails,
// never skips, when promtool is missing.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { loadRules, ROOT, rulesForRegion } from './references.js';

const TESTS_PATH = join(ROOT, 'test/observability/rules.test.yaml');
const dir = mkdtempSync(join(tmpdir(), 'promtool-'));
// rules.test.yaml names `prometheus-rules.yaml` beside itself: the file as the
// chart renders it for us-east-1 (the region the unit tests' series carry).
writeFileSync(join(dir, 'prometheus-rules.yaml'), rulesForRegion('us-east-1'));
copyFileSync(TESTS_PATH, join(dir, 'rules.test.yaml'));

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function promtool(...args: string[]) {
  const r = spawnSync('promtool', args, { cwd: dir, encoding: 'utf8', timeout: 60_000 });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') {
    throw new Error(
      'promtool is not installed: run scripts/install-promtool.sh (Debian package "prometheus")',
    );
  }
  if (r.error) throw r.error;
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

interface UnitTests {
  rule_files: string[];
  tests: { alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] }[];
}

describe('promtool', () => {
  it('is installed', () => {
    const r = promtool('--version');
    expect(r.status, r.output).toBe(0);
  });

  it('check rules accepts the chart rules file', () => {
    const r = promtool('check', 'rules', 'prometheus-rules.yaml');
    expect(r.status, r.output).toBe(0);
    const count = loadRules().groups.reduce((n, g) => n + g.rules.length, 0);
    expect(r.output).toContain(`SUCCESS: ${count} rules found`);
  });

  it('test rules passes the unit tests', () => {
    const r = promtool('test', 'rules', 'rules.test.yaml');
    expect(r.status, r.output).toBe(0);
    expect(r.output).toContain('SUCCESS');
  });

  it('the unit tests cover every alert firing and staying silent', () => {
    const t = yaml.load(readFileSync(TESTS_PATH, 'utf8')) as UnitTests;
    expect(t.rule_files).toEqual(['prometheus-rules.yaml']);
    const cases = t.tests.flatMap((x) => x.alert_rule_test ?? []);
    for (const rule of loadRules().groups.flatMap((g) => g.rules)) {
      if (rule.alert === undefined) continue;
      const mine = cases.filter((c) => c.alertname === rule.alert);
      expect(
        mine.some((c) => (c.exp_alerts ?? []).length > 0),
        `${rule.alert} fires`,
      ).toBe(true);
      expect(
        mine.some((c) => (c.exp_alerts ?? []).length === 0),
        `${rule.alert} stays silent`,
      ).toBe(true);
    }
  });

  it('a broken expectation makes promtool fail (the harness is not vacuous)', () => {
    const broken = readFileSync(TESTS_PATH, 'utf8').replace('severity: critical', 'severity: page');
    const path = join(dir, 'broken.test.yaml');
    writeFileSync(path, broken);
    const r = promtool('test', 'rules', 'broken.test.yaml');
    expect(r.status).not.toBe(0);
  });
});
