// Overload is not a storage failure (issue 19, CONTRACT §1 503 overloaded):
// one api process driven past saturation with Redis healthy (a private
// redis-server on 17520), by a flood of forged 16 KiB bodies from a separate
// process, while signed swipes that must be declined (no trip, wrong
// merchant) and signed swipes for real trips arrive. Expected: 0 fail-open
// decisions, 0 approvals of the must-decline swipes, and real decisions for
// real trips; what the pod cannot decide in time it refuses with 503.
// Bounded: 6 s of flood, at most FLOOD_REQUESTS_MAX forged requests.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { signatureHeader } from '../../src/auth/signature.js';
import { cpuSeconds } from '../../bench/procs.js';
import { Keys } from '../../src/redis/keys.js';
import { type ApiProc, createShoppers, SECRET, startApiProc } from './faultHarness.js';
import { type PrivateRedis, startPrivateRedis } from './privateRedis.js';

const REDIS_PORT = 17520;
const PREFIX = `sat${randomBytes(3).toString('hex')}`;
const PARTITIONS = 8;
const FLOOD_MS = 6000;
const FLOOD_CONNECTIONS = 200;
const FLOOD_REQUESTS_MAX = 400_000;
const SWIPE_RPS = 150;
const CLIENT_TIMEOUT_MS = 2000;

const dir = mkdtempSync(join(tmpdir(), 'sa-saturation-'));
let redis: PrivateRedis;
let api: ApiProc;
let flood: ChildProcess | undefined;

beforeAll(async () => {
  redis = await startPrivateRedis(REDIS_PORT);
  const keys = new Keys(PREFIX, PARTITIONS);
  for (let p = 0; p < PARTITIONS; p++) await redis.client().hset(`${keys.base(p)}meta`, 'initialized_ms', 1);
  api = await startApiProc(
    {
      REDIS_URL: redis.url,
      REDIS_PREFIX: PREFIX,
      PARTITIONS: String(PARTITIONS),
      FAILOPEN_JOURNAL_PATH: join(dir, 'journal.jsonl'),
      // Low enough that the flood's HMAC'd requests fill it: the pod must shed.
      API_INFLIGHT_REQUESTS_MAX: '64',
      OVERLOAD_LOOP_LAG_MS: '40',
      MAX_SWIPES_PER_MINUTE: '100000',
    },
    join(dir, 'api.log'),
  );
}, 60_000);

afterAll(async () => {
  if (flood !== undefined && flood.exitCode === null) flood.kill('SIGKILL');
  await api?.stop();
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * The flood, in its own process: forged 16 KiB bodies on 200 keep-alive
 * connections, each sending its next request as soon as the previous one is
 * answered (no pipelining: a pipelined request is refused before it is read).
 */
function startFlood(port: number): { done: Promise<number> } {
  const script = `
const net = require('node:net');
const { randomBytes } = require('node:crypto');
const port = ${port}, until = Date.now() + ${FLOOD_MS}, max = ${FLOOD_REQUESTS_MAX};
const body = Buffer.alloc(16 * 1024 - 64, 0x20);
let sent = 0;
function request(i) {
  const now = Math.floor(Date.now() / 1000);
  // Half carry a plausible header (current t, a v1 that cannot match: costs an HMAC),
  // half a stale one (refused on the header alone).
  const sig = i % 2 === 0 ? 't=' + now + ',v1=' + randomBytes(32).toString('hex') : 't=' + (now - 3600) + ',v1=' + 'ab'.repeat(32);
  return Buffer.concat([Buffer.from('POST /v1/authorizations HTTP/1.1\\r\\nHost: x\\r\\nContent-Type: application/json\\r\\nX-Signature: ' + sig + '\\r\\nContent-Length: ' + body.length + '\\r\\n\\r\\n'), body]);
}
function connection() {
  if (Date.now() > until || sent >= max) return;
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => {});
  s.on('close', () => setTimeout(connection, 1));
  // One request at a time per connection (keep-alive), the next as soon as an answer arrives.
  const next = () => {
    if (Date.now() > until || sent >= max) { s.end(); return; }
    sent++;
    s.write(request(sent));
  };
  s.on('data', (d) => {
    const answers = d.toString('latin1').split('HTTP/1.1 ').length - 1;
    for (let i = 0; i < answers; i++) next();
  });
  s.on('connect', next);
}
for (let i = 0; i < ${FLOOD_CONNECTIONS}; i++) connection();
setTimeout(() => { process.stdout.write(String(sent)); process.exit(0); }, ${FLOOD_MS} + 500);
`;
  const file = join(dir, 'flood.cjs');
  writeFileSync(file, script);
  flood = spawn(process.execPath, [file], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  flood.stdout?.on('data', (d) => {
    out += String(d);
  });
  const done = new Promise<number>((resolve) => flood?.once('exit', () => resolve(Number(out) || 0)));
  return { done };
}

type Kind = 'no_trip' | 'wrong_merchant' | 'real';
interface Sent {
  kind: Kind;
  status: number;
  json: Record<string, unknown>;
}

async function signedSwipe(kind: Kind, shopper: string): Promise<Sent> {
  const merchant =
    kind === 'wrong_merchant'
      ? { name: 'Whole Foods', address: '9 Other Rd' }
      : { name: 'SAFEWAY #1234', address: '123 MAIN STREET' };
  const raw = JSON.stringify({
    transaction_id: `txn_${randomBytes(8).toString('hex')}`,
    shopper_id: shopper,
    amount: kind === 'real' ? '1.00' : '20.00',
    currency: 'USD',
    merchant,
  });
  try {
    const res = await fetch(`${api.base}/v1/authorizations`, {
      method: 'POST',
      body: raw,
      headers: {
        'Content-Type': 'application/json',
        'X-Signature': signatureHeader(SECRET, Math.floor(Date.now() / 1000), raw),
      },
      signal: AbortSignal.timeout(CLIENT_TIMEOUT_MS),
    });
    const text = await res.text();
    let json: Record<string, unknown> = {};
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {}
    return { kind, status: res.status, json };
  } catch {
    return { kind, status: 0, json: {} };
  }
}

test('past saturation with Redis healthy: no fail-open, no approval of what must be declined, real decisions go on', async () => {
  const shoppers = await createShoppers(api.base, 20, 'sat');
  const cpu0 = cpuSeconds(api.pid) ?? 0;
  const t0 = Date.now();
  const flooding = startFlood(Number(new URL(api.base).port));
  await new Promise((r) => setTimeout(r, 300)); // the flood is on
  const sent: Promise<Sent>[] = [];
  const start = Date.now();
  let i = 0;
  while (Date.now() - start < FLOOD_MS - 800) {
    const kind: Kind = (['no_trip', 'wrong_merchant', 'real'] as const)[i % 3] as Kind;
    const shopper =
      kind === 'no_trip'
        ? `nobody_${randomBytes(4).toString('hex')}`
        : (shoppers[i % shoppers.length] as string);
    sent.push(signedSwipe(kind, shopper));
    i++;
    await new Promise((r) => setTimeout(r, 1000 / SWIPE_RPS));
  }
  const results = await Promise.all(sent);
  const forged = await flooding.done;
  const apiCores = ((cpuSeconds(api.pid) ?? 0) - cpu0) / ((Date.now() - t0) / 1000);

  const by = (k: Kind) => results.filter((r) => r.kind === k);
  const mustDecline = [...by('no_trip'), ...by('wrong_merchant')];
  const approvedWrongly = mustDecline.filter((r) => r.status === 200);
  const failOpenAnswers = results.filter((r) => r.json['mode'] === 'fail_open');
  const real = by('real');
  const realDecisions = real.filter((r) => r.status === 200 && r.json['mode'] === 'normal');
  const shed = results.filter((r) => r.status === 503);
  const failopenMetric = await api.metric('swipe_failopen_total');
  const shedMetric = await api.metric('http_shed_total');
  const figures = {
    forged_sent: forged,
    signed_sent: results.length,
    must_decline: mustDecline.length,
    must_decline_approved: approvedWrongly.length,
    must_decline_declined: mustDecline.filter((r) => r.status === 402).length,
    real: real.length,
    real_decided: realDecisions.length,
    answered_503: shed.length,
    unanswered: results.filter((r) => r.status === 0).length,
    fail_open_answers: failOpenAnswers.length,
    swipe_failopen_total: failopenMetric,
    http_shed_total: shedMetric,
    api_cpu_cores: Math.round(apiCores * 100) / 100,
  };
  console.log(`saturation figures ${JSON.stringify(figures)}`);

  // Past saturation: the pod refused work at the door (admission control did its job).
  expect(shedMetric).toBeGreaterThan(0);
  expect(failopenMetric).toBe(0);
  expect(failOpenAnswers).toEqual([]);
  expect(approvedWrongly).toEqual([]);
  // Every answer is a decision, a 503 refusal, or none at all: never a 5xx other than 503.
  for (const r of results) expect([0, 200, 402, 503]).toContain(r.status);
  for (const r of results.filter((x) => x.status === 503)) expect(r.json['error']).toBe('overloaded');
  // Signed swipes for real trips still get real decisions through the flood.
  expect(realDecisions.length).toBeGreaterThan(0);
  // The declines that came back are Redis's own reasons.
  for (const r of mustDecline.filter((x) => x.status === 402))
    expect(['UNKNOWN_SHOPPER', 'MERCHANT_MISMATCH']).toContain(r.json['reason']);
}, 60_000);
