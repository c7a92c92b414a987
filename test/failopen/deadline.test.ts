// The deadline measures the Redis call itself (src/failopen/breaker.ts
// withRedisDeadline): a Redis that does not answer is a DeadlineError after
// the deadline; a pod whose event loop stalled, or whose Redis connection
// keeps answering the calls ahead of ours, is an OverloadedError after the
// extra wait (never a fail-open cause), and the breaker does not count it.
// The signals are plain counters here; Redis itself is not involved.
import { expect, test } from 'vitest';
import {
  CircuitBreaker,
  DeadlineError,
  type LoadSignals,
  OverloadedError,
  withRedisDeadline,
} from '../../src/failopen/breaker.js';

const never = () => new Promise<never>(() => {});

function signals(): LoadSignals & { stalled: number; replies: number } {
  const s = {
    stalled: 0,
    replies: 0,
    stalledMs: () => s.stalled,
    repliesSeen: () => s.replies,
  };
  return s;
}

async function outcome(p: Promise<unknown>): Promise<{ err: unknown; ms: number }> {
  const t = performance.now();
  try {
    await p;
    return { err: undefined, ms: performance.now() - t };
  } catch (err) {
    return { err, ms: performance.now() - t };
  }
}

test('a silent Redis and an attentive loop: DeadlineError at the deadline', async () => {
  const r = await outcome(withRedisDeadline(never(), 25, 250, signals()));
  expect(r.err).toBeInstanceOf(DeadlineError);
  expect(r.ms).toBeLessThan(200);
});

test('Redis answering other calls ahead of ours: waited for, then OverloadedError', async () => {
  const s = signals();
  const ticker = setInterval(() => s.replies++, 2);
  const r = await outcome(withRedisDeadline(never(), 25, 100, s));
  clearInterval(ticker);
  expect(r.err).toBeInstanceOf(OverloadedError);
  expect(r.ms).toBeGreaterThanOrEqual(120);
});

test('loop stall is not Redis time: the answer read late is still the answer', async () => {
  const s = signals();
  const answer = new Promise<string>((resolve) => setTimeout(() => resolve('decided'), 60));
  // 50 ms of the wait were the loop's own stall: only ~10 ms were Redis's.
  setTimeout(() => {
    s.stalled += 50;
  }, 20);
  expect(await withRedisDeadline(answer, 25, 250, s)).toBe('decided');
});

test('the breaker counts Redis timeouts, never overload', async () => {
  const s = signals();
  const b = new CircuitBreaker({
    deadlineMs: 10,
    failuresToOpen: 2,
    openMs: 1000,
    openMsMax: 1000,
    probe: async () => 'PONG',
    load: s,
    overloadWaitMs: 20,
  });
  const ticker = setInterval(() => s.replies++, 1);
  for (let i = 0; i < 3; i++) expect((await outcome(b.run(never))).err).toBeInstanceOf(OverloadedError);
  clearInterval(ticker);
  expect(b.state).toBe('closed');
  for (let i = 0; i < 2; i++) expect((await outcome(b.run(never))).err).toBeInstanceOf(DeadlineError);
  expect(b.state).toBe('open');
  b.stop();
});
