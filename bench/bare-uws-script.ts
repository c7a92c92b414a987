// Limit (3): a bare uWebSockets.js server that calls the same authorizeSwipe
// script for every request, with the service's ioredis client options
// (src/redis/client.ts: auto-pipelining off, 25 ms command timeout), the same
// call path (ScriptRunner: one pre-encoded EVALSHA) and the same keys and ARGV
// shape, but none of the service's own work: no HMAC check,
// no strict JSON/money parser, no merchant normalization, no spans. Its one metric is
// the service's decision histogram (same name, same buckets, same start: the request
// line), so the bench reads server-side latency of (3) and of the service the same way.
//   BENCH_PORT=18431 BENCH_METRICS_PORT=18432 REDIS_PREFIX=bench.. PARTITIONS=64 node .bench-build/bench/bare-uws-script.js
import { randomUUID } from 'node:crypto';
import { Histogram, Registry } from 'prom-client';
import uWS from 'uWebSockets.js';
import { startMetricsServer } from '../src/observability/metricsServer.js';
import { loadConfig } from '../src/config/config.js';
import { createRedisClient } from '../src/redis/client.js';
import { Keys } from '../src/redis/keys.js';
import { LATENCY_BUCKETS_S } from '../src/observability/metrics.js';
import { ScriptRunner } from '../src/redis/scripts.js';
import { authorizeCall } from './workload.js';

const port = Number(process.env['BENCH_PORT'] ?? 18431);
const metricsPort = Number(process.env['BENCH_METRICS_PORT'] ?? 18432);
const config = loadConfig({
  REDIS_URL: process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379',
  REDIS_PREFIX: process.env['REDIS_PREFIX'] ?? 'sa',
  PARTITIONS: process.env['PARTITIONS'] ?? '64',
  LOG_LEVEL: 'silent',
});
/** BENCH_AUTOPIPELINE=1: the same client with ioredis auto-pipelining on (one write per event-loop turn). */
const autoPipelining = process.env['BENCH_AUTOPIPELINE'] === '1';
const client = createRedisClient(config, {
  name: 'bench-bare-script',
  commandTimeoutMs: config.decisionTimeoutMs,
});
if (autoPipelining) (client.options as { enableAutoPipelining: boolean }).enableAutoPipelining = true;

/**
 * BENCH_COALESCE=1: the service's REDIS_COALESCE_WRITES (src/redis/coalesce.ts, off by
 * default): after the first EVALSHA of an event-loop turn, the rest of the turn's leave in
 * one writev at the end of the poll phase instead of one write(2) each.
 */
const scripts = new ScriptRunner(client, undefined, undefined, {
  coalesceWrites: process.env['BENCH_COALESCE'] === '1',
});
const keys = new Keys(config.redisPrefix, config.partitions);

interface Body {
  transaction_id: string;
  shopper_id: string;
  amount: string;
  merchant: { name: string };
}

const registry = new Registry();
const decisionDuration = new Histogram({
  name: 'swipe_decision_duration_seconds',
  help: 'Time from the request line to the response being written, in seconds.',
  buckets: LATENCY_BUCKETS_S,
  registers: [registry],
});

function answer(
  res: uWS.HttpResponse,
  state: { aborted: boolean; startedNs: bigint },
  status: string,
  body: string,
): void {
  if (state.aborted) return;
  res.cork(() => {
    res.writeStatus(status).writeHeader('Content-Type', 'application/json').end(body);
  });
  decisionDuration.observe(Number(process.hrtime.bigint() - state.startedNs) / 1e9);
}

await client.connect();
await startMetricsServer('127.0.0.1', metricsPort, { registry }, () => true);
uWS
  .App()
  .post('/v1/authorizations', (res, req) => {
    const startedNs = process.hrtime.bigint();
    const sigHeader = req.getHeader('x-signature');
    const state = { aborted: false, startedNs };
    res.onAborted(() => {
      state.aborted = true;
    });
    const chunks: Buffer[] = [];
    res.onData((chunk, isLast) => {
      chunks.push(Buffer.from(chunk.slice(0)));
      if (!isLast) return;
      const b = JSON.parse(Buffer.concat(chunks).toString()) as Body;
      const v1 = sigHeader.slice(sigHeader.indexOf('v1=') + 3);
      const swipe = {
        shopperId: String(b.shopper_id),
        amountCents: Math.round(Number(b.amount) * 100),
        merchantName: b.merchant.name,
        txn: b.transaction_id,
      };
      const authId = `auth_${randomUUID().replaceAll('-', '')}`;
      const call = authorizeCall(keys, swipe, v1, Date.now(), randomUUID(), authId);
      scripts.run('authorizeSwipe', call.keys, call.args).then(
        (raw) => {
          const r = raw as Array<string | number>;
          const ok = Number(r[0]) === 0;
          answer(
            res,
            state,
            ok ? '200 OK' : '402 Payment Required',
            `{"decision":"${ok ? 'approved' : 'declined'}","authorization_id":"${r[1]}","amount_cents":${r[3]},"remaining_cents":${r[4]}}`,
          );
        },
        () => answer(res, state, '503 Service Unavailable', '{"error":"storage_unavailable"}'),
      );
    });
  })
  .listen('127.0.0.1', port, (socket) => {
    if (socket === false) {
      console.error(`cannot listen on ${port}`);
      process.exit(1);
    }
    console.log(`listening ${port}`);
  });

process.on('SIGTERM', () => {
  client.disconnect();
  process.exit(0);
});
