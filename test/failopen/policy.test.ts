// The fail-open policy over a real journal file whose disk is slow or fails
// (fs.write replaced): what a swipe is answered while its approval is being
// written, and when the write fails.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import type { SwipeRequest } from '../../src/decisions/swipeRequest.js';
import { Journal, type WriteFn } from '../../src/failopen/journal.js';
import { FailOpenPolicy } from '../../src/failopen/policy.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { heldDisk } from './heldDisk.js';

const dir = mkdtempSync(join(tmpdir(), 'sa-policy-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const LIMITS = {
  enabled: true,
  maxCents: 10_000,
  shopperMaxCents: 20_000,
  windowMs: 600_000,
  shoppersMax: 1000,
};
const TIMEOUT = Object.assign(new Error('Redis call timed out after 25 ms'), { name: 'DeadlineError' });
let n = 0;

function swipe(amountCents: number, shopperId = 'shopper-1'): SwipeRequest {
  n++;
  return {
    transactionId: `txn_${n}`,
    shopperId,
    amountCents,
    currency: 'USD',
    merchantName: 'Safeway',
    merchantAddress: '123 Main St',
    merchantNameNorm: 'SAFEWAY',
    merchantAddressNorm: '123 MAIN ST',
    lat: '',
    lng: '',
    idempotencyKey: `t:txn_${n}`,
    fingerprint: `fp_${n}`,
  };
}

function policyOn(name: string, write: WriteFn): { policy: FailOpenPolicy; journal: Journal } {
  const journal = Journal.open({
    path: join(dir, `${name}.jsonl`),
    bytesMax: 1 << 20,
    windowMs: 600_000,
    write,
  });
  const policy = new FailOpenPolicy(
    LIMITS,
    journal,
    createMetrics({ defaultMetrics: false }),
    createLogger('silent'),
  );
  return { policy, journal };
}

const tick = () => new Promise((r) => setImmediate(r));

test('an approval is answered once written; a retry meanwhile waits and gets the identical answer', async () => {
  const d = heldDisk();
  const { policy, journal } = policyOn('slow', d.write);
  const req = swipe(5000);
  const first = policy.decide(req, 'auth_1', Date.now(), TIMEOUT);
  await tick();
  // Counted while the disk works: a second swipe of the shopper sees the first.
  expect(policy.windowCents('shopper-1', Date.now())).toBe(5000);
  const retry = policy.decide(req, 'auth_2', Date.now(), TIMEOUT);
  let answered = false;
  void first.then(() => {
    answered = true;
  });
  await tick();
  expect(answered).toBe(false);
  d.release();
  const [a, b] = await Promise.all([first, retry]);
  expect(a.reason).toBeUndefined();
  expect(a.mode).toBe('fail_open');
  expect({ ...b, replayed: false }).toEqual(a);
  expect(journal.pendingCount()).toBe(1);
  await journal.close();
});

test('a failed write declines STORAGE_UNAVAILABLE, for the retry too, and gives the shopper back its room', async () => {
  const d = heldDisk();
  const { policy, journal } = policyOn('failing', d.write);
  const req = swipe(5000, 'shopper-2');
  const first = policy.decide(req, 'auth_3', Date.now(), TIMEOUT);
  await tick();
  const retry = policy.decide(req, 'auth_4', Date.now(), TIMEOUT);
  await tick();
  d.release(true);
  const [a, b] = await Promise.all([first, retry]);
  expect(a.reason).toBe('STORAGE_UNAVAILABLE');
  expect(b.reason).toBe('STORAGE_UNAVAILABLE');
  expect(b.authorizationId).toBe(a.authorizationId);
  expect(policy.windowCents('shopper-2', Date.now())).toBe(0);
  expect(journal.pendingCount()).toBe(0);
  // The disk works again: the next swipe is approved and journaled.
  const next = policy.decide(swipe(4000, 'shopper-2'), 'auth_5', Date.now(), TIMEOUT);
  await tick();
  d.release();
  expect((await next).reason).toBeUndefined();
  expect(policy.windowCents('shopper-2', Date.now())).toBe(4000);
  expect(journal.pendingCount()).toBe(1);
  const closing = journal.close();
  d.release();
  await closing;
});
