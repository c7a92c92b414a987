// replayFailOpen on the shared Redis (own key prefix): each outcome, its WAL
// event, idempotency of the replay itself, and that a later retry through the
// api gets the fail-open answer byte for byte.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { decisionResponse } from '../../src/decisions/authorize.js';
import type { FailOpenEntry } from '../../src/failopen/journal.js';
import { decodeReplayResult, type ReplayResult, replayEntry } from '../../src/failopen/replayer.js';
import { ScriptRunner } from '../../src/redis/scripts.js';
import { signatureHeader } from '../../src/auth/signature.js';
import { newId, SECRET, startTestApi, swipeBody, type TestApi, tripWithMilk } from '../helpers/api.js';

const dir = mkdtempSync(join(tmpdir(), 'sa-replay-'));
let h: TestApi;
let scripts: ScriptRunner;

beforeAll(async () => {
  h = await startTestApi({ FAILOPEN_JOURNAL_PATH: join(dir, 'j.jsonl') });
  scripts = new ScriptRunner(h.redis, undefined, undefined);
  for (let p = 0; p < h.config.partitions; p++)
    await h.redis.hset(`${h.keys.base(p)}meta`, 'initialized_ms', 1);
});
afterAll(async () => {
  await h?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const shopperWithTrip = () => tripWithMilk(h);

/** The journal entry the policy would have written for this swipe body. */
function entryFor(
  body: ReturnType<typeof swipeBody>,
  amountCents: number,
  fp: string,
  at = Date.now(),
): FailOpenEntry {
  return {
    id: `auth_${newId('fo').replace('_', '')}`,
    ev: newId('ev'),
    at,
    shopper: body.shopper_id,
    amount: amountCents,
    remaining: 0,
    currency: 'USD',
    idem: `t:${body.transaction_id}`,
    fp,
    txn: body.transaction_id,
    mname: body.merchant.name,
    maddr: body.merchant.address,
    lat: '',
    lng: '',
  };
}

function replay(e: FailOpenEntry, requireIntact = 1): Promise<ReplayResult> {
  return replayEntry({ config: h.config, keys: h.keys, scripts }, e, Date.now(), requireIntact === 1);
}

async function events(id: string) {
  return (await h.walEvents()).filter(
    (e) => e.d['authorization_id'] === id || e.d['redis_authorization_id'] === id,
  );
}

/** The fingerprint the api computes (read back from a normal decision on a throwaway key). */
async function fingerprintOf(body: ReturnType<typeof swipeBody>): Promise<string> {
  const probe = { ...body, transaction_id: newId('fp') };
  const r = await h.swipe(probe);
  const ev = (await h.walEvents()).find((e) => e.d['authorization_id'] === r.json['authorization_id']);
  return ev?.d['fingerprint'] as string;
}

test('applied: counted once against the trip, one WAL event; a second replay writes nothing', async () => {
  const { shopper, trip } = await shopperWithTrip();
  const body = swipeBody(shopper, '12.00');
  const fp = await fingerprintOf({ ...body, amount: '12.00' });
  const before = (await h.getTrip(shopper, trip)).json['authorized_cents'] as number;
  const e = entryFor(body, 1200, fp);

  const first = await replay(e);
  expect(first).toMatchObject({ code: 'applied', tripId: trip, authorizedCents: before + 1200 });
  const again = await replay(e);
  expect(again.code).toBe('duplicate');
  expect((await h.getTrip(shopper, trip)).json['authorized_cents']).toBe(before + 1200);
  const evs = await events(e.id);
  expect(evs).toHaveLength(1);
  expect(evs[0]).toMatchObject({ t: 'failopen.replayed', e: e.ev });
  expect(evs[0]?.d).toMatchObject({
    replay_outcome: 'applied',
    mode: 'fail_open',
    decision: 'approved',
    status: 200,
    trip_id: trip,
    amount_cents: 1200,
    authorized_cents: before + 1200,
    idempotency_key: e.idem,
    fingerprint: fp,
    at_ms: e.at,
  });

  // The processor retries against a healthy Redis: the fail-open answer, byte for byte.
  const delivered = decisionResponse({
    reason: undefined,
    authorizationId: e.id,
    tripId: '',
    amountCents: 1200,
    remainingCents: 0,
    mode: 'fail_open',
    replayed: false,
  }).body;
  const retry = await h.swipe(body);
  expect(retry.text).toBe(delivered);
  expect(retry.headers.get('idempotent-replayed')).toBe('true');
  expect((await h.getTrip(shopper, trip)).json['authorized_cents']).toBe(before + 1200);
});

test('already_decided: our own timed-out call executed late; nothing counted twice, the delivered answer is kept', async () => {
  const { shopper, trip } = await shopperWithTrip();
  const body = swipeBody(shopper, '7.00');
  const redisAnswer = await h.swipe(body); // stands in for the call that timed out but ran
  expect(redisAnswer.json['mode']).toBe('normal');
  const authorized = (await h.getTrip(shopper, trip)).json['authorized_cents'];
  const ev = (await h.walEvents()).find(
    (x) => x.d['authorization_id'] === redisAnswer.json['authorization_id'],
  );
  const e = {
    ...entryFor(body, 700, ev?.d['fingerprint'] as string),
    id: redisAnswer.json['authorization_id'] as string,
  };

  expect((await replay(e)).code).toBe('already_decided');
  expect((await replay(e)).code).toBe('duplicate');
  expect((await h.getTrip(shopper, trip)).json['authorized_cents']).toBe(authorized);
  const replayed = (await events(e.id)).filter((x) => x.t === 'failopen.replayed');
  expect(replayed).toHaveLength(1);
  expect(replayed[0]?.d).toMatchObject({ replay_outcome: 'already_decided', redis_decision: 'approved' });
  const retry = await h.swipe(body);
  expect(retry.json).toMatchObject({
    authorization_id: e.id,
    mode: 'fail_open',
    trip_id: '',
    remaining_cents: 0,
  });
});

test('conflict: Redis declined the key; its decision is kept, nothing counted, the disagreement is in the WAL', async () => {
  const { shopper, trip } = await shopperWithTrip();
  const body = swipeBody(shopper, '999.00');
  const declined = await h.swipe(body);
  expect(declined.json['reason']).toBe('AMOUNT_EXCEEDS_ALLOWANCE');
  const authorized = (await h.getTrip(shopper, trip)).json['authorized_cents'];
  const ev = (await h.walEvents()).find((x) => x.d['authorization_id'] === declined.json['authorization_id']);
  const e = entryFor({ ...body }, 99_900, ev?.d['fingerprint'] as string);

  expect(await replay(e)).toMatchObject({
    code: 'conflict',
    storedAuthorizationId: declined.json['authorization_id'],
  });
  expect((await h.getTrip(shopper, trip)).json['authorized_cents']).toBe(authorized);
  const replayed = (await events(e.id)).filter((x) => x.t === 'failopen.replayed');
  expect(replayed[0]?.d).toMatchObject({
    replay_outcome: 'conflict',
    redis_decision: 'declined',
    redis_reason: 'AMOUNT_EXCEEDS_ALLOWANCE',
  });
  expect((await h.swipe(body)).text).toBe(declined.text);
});

test('deferred while the partition is not marked intact (after a data loss), applied once it is', async () => {
  const { shopper, trip } = await shopperWithTrip();
  const body = swipeBody(shopper, '3.00');
  const fp = await fingerprintOf(body);
  const e = entryFor(body, 300, fp);
  const meta = `${h.keys.base(h.keys.partition(shopper))}meta`;
  await h.redis.del(meta);
  expect((await replay(e)).code).toBe('deferred');
  expect(await events(e.id)).toHaveLength(0);
  await h.redis.hset(meta, 'hydrated_ms', Date.now());
  expect(await replay(e)).toMatchObject({ code: 'applied', tripId: trip });
});

test('a trip created after the swipe is not charged; bad arguments are refused without a write', async () => {
  const { shopper } = await shopperWithTrip();
  const body = swipeBody(shopper, '2.00');
  const e = entryFor(body, 200, await fingerprintOf(body), Date.now() - 60_000);
  expect(await replay(e)).toMatchObject({ code: 'applied', tripId: '' });
  expect(() => decodeReplayResult([5, 'invalid', '', '', -1])).toThrow(/refused/);
  const bad = { ...entryFor(body, 200, 'fp'), amount: 0 };
  await expect(replay(bad)).rejects.toThrow(/refused/);
  expect(await events(bad.id)).toHaveLength(0);
});

test("applied with its signature: the signed bytes are the swipe endpoint's, also after a reversal tried them first", async () => {
  const { shopper, trip } = await shopperWithTrip();
  const body = swipeBody(shopper, '9.00');
  const fp = await fingerprintOf(body);
  const raw = JSON.stringify(body);
  const t = Math.floor(Date.now() / 1000);
  const headers = { 'Content-Type': 'application/json', 'X-Signature': signatureHeader(SECRET, t, raw) };
  const sig = createHash('sha256').update(`${t}.${raw}`).digest('hex');

  // While the approval is only in a pod's journal, its bytes replayed to /reversals find nothing.
  const early = await h.request('POST', '/v1/authorizations/reversals', raw, headers);
  expect(early.status).toBe(404);

  const e = { ...entryFor(body, 900, fp), sig };
  expect((await replay(e)).code).toBe('applied');
  const before = (await h.getTrip(shopper, trip)).json['authorized_cents'];

  const reversal = await h.request('POST', '/v1/authorizations/reversals', raw, headers);
  expect([reversal.status, reversal.json['message']]).toEqual([
    401,
    'signature already used on another endpoint',
  ]);
  const clearing = await h.request('POST', '/v1/authorizations/clearings', raw, headers);
  expect(clearing.status).toBe(401);
  expect((await h.getTrip(shopper, trip)).json['authorized_cents']).toBe(before);

  const retry = await h.request('POST', '/v1/authorizations', raw, headers);
  expect([retry.status, retry.json['authorization_id'], retry.json['mode']]).toEqual([
    200,
    e.id,
    'fail_open',
  ]);
});
