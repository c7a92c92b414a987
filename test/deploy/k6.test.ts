// k6 scripts: a real syntax check (V8 parses each file as an ES module with
// `node --check`), imports limited to k6 built-ins and ./common.js, and a run
// of every script in Node with the k6 modules stubbed (k6-harness/) against
// an in-memory model of the contract: options and thresholds are well formed,
// every scenario function exists and runs, every swipe is correctly signed,
// and the scripts' own checks all pass against contract-correct answers.
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { listFiles, LOADTEST, read, rel, run } from './helpers.js';

const scripts = listFiles(LOADTEST, /\.js$/);
const entryScripts = scripts.filter((f) => basename(f) !== 'common.js');
const K6_MODULES = new Set(['k6', 'k6/http', 'k6/crypto', 'k6/metrics', 'k6/execution']);
const SECRET = 'k6-harness-secret-0123456789';
const TOKEN = 'k6-harness-token-0123456789';
const tmp = mkdtempSync(join(tmpdir(), 'sa-k6-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface HarnessReport {
  problems: string[];
  scenarios: string[];
  thresholds: string[];
  checks: Record<string, { passes: number; fails: number }>;
  requests: Record<string, number>;
  authorizations: number;
  responseCallback: { statuses: number[] } | null;
  thresholdResults: Record<string, { count: number; ok: boolean }>;
}

function harness(script: string, env: Record<string, string> = {}, iterations = 3): HarnessReport {
  const r = run(
    process.execPath,
    [
      '--import',
      './test/deploy/k6-harness/register.mjs',
      'test/deploy/k6-harness/run.mjs',
      script,
      String(iterations),
    ],
    {
      env: {
        PATH: process.env.PATH ?? '',
        SIGNATURE_SECRET: SECRET,
        API_TOKEN: TOKEN,
        FAKE_SIGNATURE_SECRET: SECRET,
        FAKE_API_TOKEN: TOKEN,
        GATE_TRIPS: '7',
        // 7 trips x 10 swipes a minute: the gate's setup refuses a rate they cannot absorb.
        GATE_RATE: '1',
        TRIPS: '7',
        ...env,
      },
    },
  );
  if (r.status !== 0) throw new Error(`${script} failed in the harness:\n${r.stderr}`);
  return JSON.parse(r.stdout) as HarnessReport;
}

function failedChecks(report: HarnessReport): string[] {
  return Object.entries(report.checks)
    .filter(([, c]) => c.fails > 0)
    .map(([name]) => name);
}

describe('k6 scripts', () => {
  it('are the four scenarios, the gate and the shared module', () => {
    expect(scripts.map((f) => basename(f)).sort()).toEqual([
      'common.js',
      'failopen-drill.js',
      'gate.js',
      'idempotent-retries.js',
      'shopping-mix.js',
      'swipe-storm.js',
    ]);
  });

  for (const file of scripts) {
    describe(rel(file), () => {
      it('parses as an ES module (node --check)', () => {
        // A copy with an .mjs name, so the check does not depend on package.json "type".
        const copy = join(tmp, `${basename(file, '.js')}.mjs`);
        copyFileSync(file, copy);
        const r = run(process.execPath, ['--check', copy]);
        expect(r.status, r.stderr).toBe(0);
      });

      it('imports only k6 built-ins and ./common.js', () => {
        const specs = [...read(file).matchAll(/^\s*import\s[\s\S]*?from\s+'([^']+)'/gm)].map(
          (m) => m[1] ?? '',
        );
        expect(specs.length).toBeGreaterThan(0);
        for (const s of specs)
          expect(K6_MODULES.has(s) || s === './common.js', `${rel(file)} imports ${s}`).toBe(true);
      });
    });
  }

  it('the syntax check really catches a syntax error', () => {
    const broken = join(tmp, 'broken.mjs');
    writeFileSync(broken, `${read(join(LOADTEST, 'gate.js'))}\nexport function oops( {\n`);
    expect(run(process.execPath, ['--check', broken]).status).not.toBe(0);
  });

  for (const file of entryScripts) {
    it(`${rel(file)} runs against the contract model: valid options, signed swipes, every check passes`, () => {
      const report = harness(rel(file));
      expect(report.problems).toEqual([]);
      expect(report.thresholds).toContain('http_req_failed');
      expect(report.thresholds.some((t) => t.startsWith('http_req_duration{'))).toBe(true);
      expect(report.thresholds.some((t) => t.startsWith('checks{scenario:'))).toBe(true);
      expect(report.authorizations).toBeGreaterThan(0);
      expect(report.responseCallback?.statuses).toEqual([200, 201, 402]);
      expect(Object.keys(report.checks).length).toBeGreaterThan(0);
      expect(failedChecks(report)).toEqual([]);
    });
  }

  it('the gate runs the storm, the shopping mix and the retries, with p99 and error-rate thresholds', () => {
    const report = harness('loadtest/gate.js', { GATE_P99_MS: '40', GATE_ERROR_RATE: '0.002' });
    expect(report.scenarios.sort()).toEqual(['idempotent_retries', 'shopping_mix', 'swipe_storm']);
    const src = read(join(LOADTEST, 'gate.js'));
    expect(src).toMatch(/'http_req_duration\{scenario:swipe_storm\}': \[`p\(99\)<\$\{P99_MS\}`\]/);
    expect(src).toMatch(/http_req_failed: \[`rate<\$\{ERROR_RATE\}`\]/);
  });

  it('the gate asserts its decline mix: storm all approved, no velocity, the mix declines it expects', () => {
    const report = harness('loadtest/gate.js');
    const results = report.thresholdResults;
    for (const name of [
      'swipe_decisions{scenario:swipe_storm,decision:declined}: count<1',
      'swipe_decisions{reason:VELOCITY_LIMIT}: count<1',
      'swipe_decisions{scenario:shopping_mix,reason:TRIP_CLOSED}: count>0',
      'swipe_decisions{scenario:shopping_mix,reason:AMOUNT_EXCEEDS_ALLOWANCE}: count>0',
      'swipe_fail_open_approvals: count<1',
      'swipe_storage_unavailable: count<1',
    ]) {
      expect(results[name], name).toBeDefined();
      expect(results[name]?.ok, `${name} (${results[name]?.count})`).toBe(true);
    }
  });

  it('storm swipes over the velocity limit fail the gate (what 2x-too-few trips did)', () => {
    // One swipe a minute per trip allowed: the second round-robin pass over the 7 trips is declined.
    const report = harness('loadtest/gate.js', { FAKE_MAX_SWIPES_PER_MINUTE: '1' }, 10);
    expect(report.thresholdResults['swipe_decisions{reason:VELOCITY_LIMIT}: count<1']?.ok).toBe(false);
    expect(
      report.thresholdResults['swipe_decisions{scenario:swipe_storm,decision:declined}: count<1']?.ok,
    ).toBe(false);
  });

  it('the gate refuses a rate its trips cannot absorb under the velocity limit', () => {
    expect(() => harness('loadtest/gate.js', { GATE_RATE: '400', GATE_TRIPS: '800' })).toThrow(
      /GATE_TRIPS=800 too few for GATE_RATE=400/,
    );
  });

  it('a fail-open gate run fails its thresholds', () => {
    const report = harness('loadtest/gate.js', { FAKE_MODE: 'fail_open' });
    expect(report.thresholdResults['swipe_fail_open_approvals: count<1']?.ok).toBe(false);
  });

  it('a wrong signing secret makes the checks fail (the harness really verifies signatures)', () => {
    const report = harness('loadtest/swipe-storm.js', { SIGNATURE_SECRET: 'another-secret-0123456789' });
    expect(failedChecks(report)).toContain('swipe: 200 approved or 402 declined');
  });

  it('SIGNATURE_SECRETS / API_TOKENS lists (as the chart passes them) sign with the first entry', () => {
    const report = harness('loadtest/shopping-mix.js', {
      SIGNATURE_SECRET: '',
      API_TOKEN: '',
      SIGNATURE_SECRETS: `${SECRET},older-secret-0123456789`,
      API_TOKENS: `${TOKEN},other-token-0123456789`,
    });
    expect(report.authorizations).toBeGreaterThan(0);
    expect(failedChecks(report)).toEqual([]);
  });

  it('the fail-open drill accepts fail_open approvals and STORAGE_UNAVAILABLE declines', () => {
    const approving = harness('loadtest/failopen-drill.js', { FAKE_MODE: 'fail_open' });
    expect(failedChecks(approving)).toEqual([]);
    const refusing = harness('loadtest/failopen-drill.js', {
      FAKE_MODE: 'fail_open',
      DRILL_AMOUNT: '150.00',
    });
    expect(failedChecks(refusing)).toEqual([]);
  });
});
