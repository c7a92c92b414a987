// The deadline and circuit breaker with a really disconnected client and a
// really frozen Redis (private redis-server on 16530/16531), using the api's
// own client options (no offline queue, no retries, command timeout).
import { afterAll, expect, test } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import {
  BreakerOpenError,
  type BreakerState,
  CircuitBreaker,
  DeadlineError,
} from '../../src/failopen/breaker.js';
import { createRedisClient, type RedisClient } from '../../src/redis/client.js';
import { type PrivateRedis, startPrivateRedis } from './privateRedis.js';

const DEADLINE_MS = 25;
const started: PrivateRedis[] = [];
const clients: RedisClient[] = [];
afterAll(async () => {
  for (const c of clients) c.disconnect();
  for (const r of started) await r.stop();
});

function client(port: number): RedisClient {
  const config = loadConfig({ NODE_ENV: 'test', REDIS_URL: `redis://127.0.0.1:${port}` });
  const c = createRedisClient(config, { name: 'breaker-test', commandTimeoutMs: DEADLINE_MS });
  c.on('error', () => {});
  clients.push(c);
  return c;
}

function breaker(c: RedisClient, states: BreakerState[]): CircuitBreaker {
  return new CircuitBreaker({
    deadlineMs: DEADLINE_MS,
    failuresToOpen: 3,
    openMs: 50,
    openMsMax: 400,
    probe: () => c.ping(),
    onStateChange: (s) => states.push(s),
  });
}

async function timed<T>(p: Promise<T>): Promise<{ ms: number; err: unknown }> {
  const t = performance.now();
  try {
    await p;
    return { ms: performance.now() - t, err: undefined };
  } catch (err) {
    return { ms: performance.now() - t, err };
  }
}

test('Redis not there: calls fail fast, the breaker opens, then closes once Redis is up', async () => {
  const c = client(16530);
  c.connect().catch(() => {}); // keeps reconnecting with backoff
  const states: BreakerState[] = [];
  const b = breaker(c, states);
  for (let i = 0; i < 3; i++) {
    const r = await timed(b.run(() => c.ping()));
    expect(r.err).toBeInstanceOf(Error);
    expect(r.ms).toBeLessThan(DEADLINE_MS + 10); // no offline queue: no waiting at all
  }
  expect(b.state).not.toBe('closed');
  const open = await timed(b.run(() => c.ping()));
  expect(open.err).toBeInstanceOf(BreakerOpenError);
  expect(open.ms).toBeLessThan(2);

  started.push(await startPrivateRedis(16530));
  const deadline = Date.now() + 8000;
  while (b.state !== 'closed' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  expect(b.state).toBe('closed');
  expect(await b.run(() => c.ping())).toBe('PONG');
  expect(states).toContain('half_open');
  b.stop();
});

test('Redis frozen: each call gives up at the deadline, few commands pile up, recovery after SIGCONT', async () => {
  const redis = await startPrivateRedis(16531);
  started.push(redis);
  const c = client(16531);
  await c.connect();
  const states: BreakerState[] = [];
  const b = breaker(c, states);
  redis.freeze();
  try {
    const results = [];
    for (let i = 0; i < 20; i++) results.push(await timed(b.run(() => c.ping())));
    const deadlined = results.filter(
      (r) => r.err instanceof DeadlineError || /timed out/.test(String(r.err)),
    );
    expect(deadlined).toHaveLength(3); // then the breaker is open and nothing is sent
    for (const r of deadlined) expect(r.ms).toBeLessThan(DEADLINE_MS + 15);
    expect(results.slice(3).every((r) => r.err instanceof BreakerOpenError)).toBe(true);
    // Probes keep failing while frozen; the wait between them backs off.
    await new Promise((r) => setTimeout(r, 700));
    expect(b.state).not.toBe('closed');
    const sentWhileFrozen = (c as unknown as { commandQueue: { length: number } }).commandQueue.length;
    expect(sentWhileFrozen).toBeLessThanOrEqual(3 + 6); // 3 calls + a few probes, not one per request
  } finally {
    redis.thaw();
  }
  const deadline = Date.now() + 3000;
  while (b.state !== 'closed' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  expect(b.state).toBe('closed');
  b.stop();
});
