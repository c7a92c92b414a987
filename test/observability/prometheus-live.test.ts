// The alert rules in a real Prometheus (Debian package) scraping the running
// api: a private redis-server (port 17430) is frozen with SIGSTOP, one swipe is
// decided by the fail-open policy, and SwipeFailOpenActive must fire on that
// first decision (the issue saw it silent until a 6th, because the counter had
// no series before its first increment). Prometheus listens on 127.0.0.1:17431,
// scrapes every second and evaluates every second; everything is bounded in
// time and stopped by PID.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from '../helpers/api.js';
import { type RedisServer, startRedisServer } from '../helpers/redisServer.js';
import { rulesForRegion } from './references.js';

const REDIS_PORT = 17430;
const PROM_PORT = 17431;
const PROM = `http://127.0.0.1:${PROM_PORT}`;
const REGION = 'live-region-1';
const dir = mkdtempSync(join(tmpdir(), 'sa-prom-live-'));
let redis: RedisServer | undefined;
let api: TestApi | undefined;
let prometheus: ChildProcess | undefined;
let promOutput = '';

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what}: not within ${timeoutMs} ms (${String(last ?? 'no result')})\n${promOutput}`);
}

async function promQuery(
  expr: string,
): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
  const r = await fetch(`${PROM}/api/v1/query?query=${encodeURIComponent(expr)}`, {
    signal: AbortSignal.timeout(2000),
  });
  const body = (await r.json()) as {
    data: { result: { metric: Record<string, string>; value: [number, string] }[] };
  };
  return body.data.result;
}

interface Alert {
  labels: Record<string, string>;
  state: string;
}
async function alerts(name: string): Promise<Alert[]> {
  const r = await fetch(`${PROM}/api/v1/alerts`, { signal: AbortSignal.timeout(2000) });
  const body = (await r.json()) as { data: { alerts: Alert[] } };
  return body.data.alerts.filter((a) => a.labels['alertname'] === name);
}

beforeAll(async () => {
  redis = await startRedisServer({ port: REDIS_PORT });
  api = await startTestApi({
    REDIS_URL: `redis://127.0.0.1:${REDIS_PORT}`,
    FAILOPEN_ENABLED: 'true',
    FAILOPEN_JOURNAL_PATH: join(dir, 'failopen.jsonl'),
  });
  writeFileSync(join(dir, 'rules.yaml'), rulesForRegion(REGION));
  writeFileSync(
    join(dir, 'prometheus.yml'),
    [
      'global: { scrape_interval: 1s, evaluation_interval: 1s }',
      'rule_files: [rules.yaml]',
      'scrape_configs:',
      // The labels the chart's ServiceMonitor gives (region) and Kubernetes discovery adds.
      '  - job_name: swipe-authorizer-api',
      '    static_configs:',
      `      - targets: ['127.0.0.1:${api.api.metricsPort}']`,
      `        labels: { region: ${REGION}, namespace: live, pod: api-1 }`,
    ].join('\n'),
  );
  prometheus = spawn(
    'prometheus',
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${PROM_PORT}`,
      '--log.level=warn',
    ],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const keep = (b: Buffer) => {
    promOutput = (promOutput + b.toString('utf8')).slice(-16_384);
  };
  prometheus.once('error', (err) => {
    promOutput += `\ncannot start prometheus (Debian package "prometheus", scripts/install-promtool.sh): ${err.message}`;
  });
  prometheus.stdout?.on('data', keep);
  prometheus.stderr?.on('data', keep);
  await until('prometheus ready', 30_000, async () => {
    const r = await fetch(`${PROM}/-/ready`, { signal: AbortSignal.timeout(1000) });
    return r.status === 200 ? true : undefined;
  });
}, 60_000);

afterAll(async () => {
  redis?.thaw();
  if (prometheus && prometheus.exitCode === null && prometheus.signalCode === null) {
    const p = prometheus;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    const timer = setTimeout(() => p.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
  await api?.stop();
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe('SwipeFailOpenActive in a real Prometheus scraping the api', () => {
  it('the rules load and the api is scraped with its alerted counters already at 0', async () => {
    const groups = await until('rules loaded', 10_000, async () => {
      const r = await fetch(`${PROM}/api/v1/rules`, { signal: AbortSignal.timeout(2000) });
      const body = (await r.json()) as { data: { groups: { name: string }[] } };
      return body.data.groups.length > 0 ? body.data.groups.map((g) => g.name) : undefined;
    });
    expect(groups).toContain('swipe-authorizer.failopen');
    const zero = await until('swipe_failopen_total scraped', 15_000, async () => {
      const r = await promQuery('swipe_failopen_total');
      return r.length >= 2 ? r : undefined;
    });
    expect(zero.map((s) => [s.metric['decision'], s.value[1]]).sort()).toEqual([
      ['approved', '0'],
      ['declined', '0'],
    ]);
    expect((await promQuery('redis_errors_total')).map((s) => s.metric['kind']).sort()).toEqual([
      'breaker_open',
      'connection',
      'not_hydrated',
      'script',
      'timeout',
    ]);
    // Give Prometheus a second sample at 0, as a long-running pod would have.
    await new Promise((r) => setTimeout(r, 1500));
    expect(await alerts('SwipeFailOpenActive')).toEqual([]);
  }, 40_000);

  it('fires on the first fail-open decision after Redis freezes', async () => {
    const t = api as TestApi;
    redis?.freeze();
    const swipe = await t.swipe({
      shopper_id: 'live-shopper-1',
      amount: '5.00',
      merchant: { name: 'Safeway', address: '123 Main St' },
    });
    expect(swipe.status, swipe.text).toBe(200);
    expect(swipe.json).toMatchObject({ decision: 'approved', mode: 'fail_open' });
    const startedMs = Date.now();
    const firing = await until('SwipeFailOpenActive firing', 20_000, async () => {
      const a = (await alerts('SwipeFailOpenActive')).filter((x) => x.state === 'firing');
      return a.length > 0 ? a : undefined;
    });
    console.info(`prometheus-live: SwipeFailOpenActive fired ${Date.now() - startedMs} ms after the swipe`);
    expect(firing[0]?.labels).toMatchObject({ region: REGION, namespace: 'live', severity: 'critical' });
    // One decision, not six: the alert fired on the first.
    const total = await promQuery('sum(swipe_failopen_total)');
    expect(total[0]?.value[1]).toBe('1');
  }, 40_000);
});
