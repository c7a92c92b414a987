// The authorization id of a forwarded swipe (docs/regions.md, "A home that decided a forwarded
// swipe ..."), hostile cases. The id is derived from the forward's verified channel signature
// (src/regions/channel.ts): only a request that came over the channel gets one, a public request
// cannot choose it (nothing it carries sets it), and at the home an id that already names
// another decision is never used for a new one (lua/authorizeSwipe-4.lua code 13): the swipe is
// decided under an id of its own and the earlier decision is left as it was. Against real HTTP
// servers on loopback (port 0) and the shared Redis (own key prefix).
import type { IncomingMessage } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/config.js';
import { createDecider, FAIL_CLOSED, newAuthorizationId } from '../../src/decisions/authorize.js';
import { parseSwipeRequest, type SwipeRequest } from '../../src/decisions/swipeRequest.js';
import type { JsonValue } from '../../src/domain/json.js';
import type { FailOpenEntry } from '../../src/failopen/journal.js';
import { replayEntry } from '../../src/failopen/replayer.js';
import type { Request, Route } from '../../src/http/server.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { NOOP_SPAN } from '../../src/observability/tracing.js';
import { authorizeSwipe } from '../../src/redis/commands.js';
import { AuthorizationIdTakenError } from '../../src/redis/results.js';
import { ScriptRunner } from '../../src/redis/scripts.js';
import {
  forwardedAuthorizationId,
  REGION_ORIGIN_HEADER,
  REGION_SIGNATURE_HEADER,
  REGION_TIMESTAMP_HEADER,
  signForward,
} from '../../src/regions/channel.js';
import { Directory } from '../../src/regions/directory.js';
import { PeerLink } from '../../src/regions/peerLink.js';
import { withRegionSeam } from '../../src/regions/routing.js';
import { startTestApi, swipeBody, type TestApi, tripWithMilk } from '../helpers/api.js';
import { type LoopbackServer, startLoopbackServer } from '../helpers/loopback.js';
import { mapStore, requestHeaders, seamDeps, swipeRoute } from './seamParts.js';

const SECRETS = ['forwarded-id-channel-secret-0123456789abcdef'];
const ID = /^auth_[0-9a-f]{12}7[0-9a-f]{3}[89ab][0-9a-f]{15}$/;

/** The forwarding region's journal entry of a fail-open approval without a transaction id. */
function journalEntry(
  id: string,
  nowMs: number,
  shopper: string,
  amount: number,
  request: { idempotencyKey: string; fingerprint: string },
  merchant: { name: string; address: string },
): FailOpenEntry {
  return {
    id,
    ev: `ev_${id}`,
    at: nowMs,
    shopper,
    amount,
    remaining: 0,
    currency: 'USD',
    idem: request.idempotencyKey,
    fp: request.fingerprint,
    txn: '',
    mname: merchant.name,
    maddr: merchant.address,
    lat: '',
    lng: '',
  };
}
describe('forwardedAuthorizationId', () => {
  it('has the layout of minted ids, is the same on both sides of one forward, differs per forward', () => {
    expect(newAuthorizationId()).toMatch(ID);
    const sig = 'ab'.repeat(32);
    const id = forwardedAuthorizationId(sig, 1_800_000_000, '');
    expect(id).toMatch(ID);
    expect(id.slice(5, 17)).toBe((1_800_000_000_000).toString(16).padStart(12, '0'));
    expect(forwardedAuthorizationId(sig, 1_800_000_000, '')).toBe(id);
    expect(forwardedAuthorizationId('cd'.repeat(32), 1_800_000_000, '')).not.toBe(id);
    expect(forwardedAuthorizationId(sig, 1_800_000_001, '')).not.toBe(id);
    // Same bytes in the same second, two Idempotency-Keys: two swipes, two ids.
    expect(forwardedAuthorizationId(sig, 1_800_000_000, 'k1')).not.toBe(id);
    expect(forwardedAuthorizationId(sig, 1_800_000_000, 'k1')).not.toBe(
      forwardedAuthorizationId(sig, 1_800_000_000, 'k2'),
    );
  });
});

// ---- The seam: who gets an id, and the forwarder's fail-open answer takes the forward's. ----

const seen: { regionAuthorizationId: string | undefined; unreachableId: string | undefined }[] = [];
const decision: Route = {
  ...swipeRoute(),
  handler: (req: Request) => {
    seen.push({
      regionAuthorizationId: req.regionAuthorizationId,
      unreachableId: req.regionUnreachable?.authorizationId,
    });
    return req.regionUnreachable !== undefined
      ? { status: 200, body: '{"decision":"approved","mode":"fail_open"}' }
      : { status: 402, body: '{"decision":"declined","reason":"UNKNOWN_SHOPPER"}' };
  },
};
const reversal: Route = {
  ...decision,
  pattern: '/v1/authorizations/reversals',
  label: '/v1/authorizations/reversals',
};

function seamAt(link: PeerLink | undefined, forwardTimeoutMs = 2000) {
  const directory = new Directory(async () => undefined, mapStore([['s:456', { region: 'rh' }]]));
  return seamDeps({ secrets: SECRETS, forwardTimeoutMs }, directory, link);
}

const BODY = Buffer.from(JSON.stringify({ shopper_id: 456, amount: '1.00' }));

/** A request as uWS hands it to the wrapped route: the channel headers after the route's own. */
function request(channel: Record<string, string> = {}, body = BODY, idempotencyKey = ''): Request {
  return {
    params: [],
    headers: requestHeaders({
      signature: 't=1,v1=ab',
      idempotencyKey,
      extra: [REGION_ORIGIN_HEADER, REGION_TIMESTAMP_HEADER, REGION_SIGNATURE_HEADER].map(
        (n) => channel[n] ?? '',
      ),
    }),
    body,
    startedNs: 0n,
  };
}

describe('the seam at the home', () => {
  it('only a request with a valid channel signature is decided under a derived id', async () => {
    seen.length = 0;
    const wrapped = withRegionSeam(seamAt(undefined), decision);
    const nowS = Math.floor(Date.now() / 1000);
    const channel = signForward(
      SECRETS,
      'rb',
      { method: 'POST', path: '/v1/authorizations', body: BODY },
      nowS,
    );
    const res = await wrapped.handler(request(channel));
    expect(res.status).toBe(402);
    const derived = forwardedAuthorizationId(channel[REGION_SIGNATURE_HEADER] as string, nowS, '');
    expect(seen).toEqual([{ regionAuthorizationId: derived, unreachableId: undefined }]);
    seen.length = 0;
    await wrapped.handler(request(channel, BODY, 'key-1'));
    const keyed = forwardedAuthorizationId(channel[REGION_SIGNATURE_HEADER] as string, nowS, 'key-1');
    expect(keyed).not.toBe(derived);
    expect(seen).toEqual([{ regionAuthorizationId: keyed, unreachableId: undefined }]);

    // A public request (no channel origin): no id, whatever else it sends.
    seen.length = 0;
    const { [REGION_ORIGIN_HEADER]: _origin, ...noOrigin } = channel;
    await wrapped.handler(request(noOrigin));
    expect(seen[0]?.regionAuthorizationId).toBeUndefined();

    // Forged or tampered channel headers: refused before the handler runs.
    seen.length = 0;
    const forged = { ...channel, [REGION_SIGNATURE_HEADER]: 'ab'.repeat(32) };
    expect((await wrapped.handler(request(forged))).status).toBe(401);
    const otherBody = Buffer.from(JSON.stringify({ shopper_id: 456, amount: '900.00' }));
    expect((await wrapped.handler(request(channel, otherBody))).status).toBe(401);
    expect(seen).toEqual([]);
  });

  it('a call that decides nothing (a reversal) gets no id', async () => {
    seen.length = 0;
    const wrapped = withRegionSeam(seamAt(undefined), reversal);
    const nowS = Math.floor(Date.now() / 1000);
    const path = '/v1/authorizations/reversals';
    const channel = signForward(SECRETS, 'rb', { method: 'POST', path, body: BODY }, nowS);
    await wrapped.handler(request(channel));
    expect(seen).toEqual([{ regionAuthorizationId: undefined, unreachableId: undefined }]);
  });
});

describe('the seam in the forwarding region', () => {
  let silent: LoopbackServer;
  const received: IncomingMessage['headers'][] = [];

  beforeAll(async () => {
    // A home that takes the request and answers too late (after the forward deadline).
    silent = await startLoopbackServer((req, res) => {
      req.resume();
      received.push(req.headers);
      setTimeout(() => res.end('{}'), 500);
    });
  });
  afterAll(async () => {
    await silent.close();
  });

  it('a late home: the fail-open answer takes the id the forward carried', async () => {
    seen.length = 0;
    const link = new PeerLink('rh', silent.base);
    const wrapped = withRegionSeam(seamAt(link, 100), decision);
    const res = await wrapped.handler(request({}, BODY, 'key-2'));
    expect(JSON.parse(res.body as string)).toEqual({ decision: 'approved', mode: 'fail_open' });
    expect(received).toHaveLength(1);
    const sig = received[0]?.[REGION_SIGNATURE_HEADER] as string;
    const ts = Number(received[0]?.[REGION_TIMESTAMP_HEADER]);
    // First the local "not here" run (no id), then the fail-open run under the forward's id.
    expect(seen).toEqual([
      { regionAuthorizationId: undefined, unreachableId: undefined },
      { regionAuthorizationId: undefined, unreachableId: forwardedAuthorizationId(sig, ts, 'key-2') },
    ]);
    link.close();
  });
});

// ---- At the home's Redis: an id that names a decision is never reused. ----

describe('a forwarded id at the home', () => {
  let h: TestApi;
  let scripts: ScriptRunner;
  let peered: Config;

  beforeAll(async () => {
    h = await startTestApi({});
    scripts = new ScriptRunner(h.redis, undefined, undefined);
    for (let p = 0; p < h.config.partitions; p++)
      await h.redis.hset(`${h.keys.base(p)}meta`, 'initialized_ms', 1);
    const peers = new Map([['rb', 'http://127.0.0.1:9']]);
    peered = { ...h.config, regions: { ...h.config.regions, region: 'ra', peers } } as Config;
  });
  afterAll(async () => {
    await h?.stop();
  });

  function parsed(body: Record<string, unknown>, nowMs: number): SwipeRequest {
    const p = parseSwipeRequest(body as JsonValue, '', nowMs);
    if (!p.ok) throw new Error(p.message);
    return p.value;
  }

  it('colliding with an earlier decision: refused by the script, nothing written or overwritten', async () => {
    const { shopper } = await tripWithMilk(h);
    const first = await h.swipe(swipeBody(shopper, '10.00'));
    expect(first.status).toBe(200);
    const taken = String(first.json['authorization_id']);
    const authKey = h.keys.auth(h.keys.partition(shopper), taken);
    const before = await h.redis.hgetall(authKey);
    const walBefore = (await h.walEvents()).length;
    const nowMs = Date.now();
    const other = parsed(swipeBody(shopper, '20.00'), nowMs);
    const call = authorizeSwipe({ config: peered, keys: h.keys, scripts }, other, {
      nowMs,
      authorizationId: taken,
      signature: '',
      forwarded: true,
    });
    await expect(call).rejects.toBeInstanceOf(AuthorizationIdTakenError);
    expect(await h.redis.hgetall(authKey)).toEqual(before);
    expect(await h.redis.exists(h.keys.idem(h.keys.partition(shopper), other.idempotencyKey))).toBe(0);
    expect((await h.walEvents()).length).toBe(walBefore);
  });

  it('the decider decides it under an id of its own; a free id is taken; a retry gets the first decision', async () => {
    const { shopper, trip } = await tripWithMilk(h);
    const first = await h.swipe(swipeBody(shopper, '10.00'));
    const taken = String(first.json['authorization_id']);
    const authKey = h.keys.auth(h.keys.partition(shopper), taken);
    const before = await h.redis.hgetall(authKey);
    const decide = createDecider({
      config: peered,
      keys: h.keys,
      scripts,
      metrics: createMetrics({ defaultMetrics: false }),
      fallback: FAIL_CLOSED,
    });
    const span = NOOP_SPAN;
    const nowMs = Date.now();

    const collided = await decide(parsed(swipeBody(shopper, '5.00'), nowMs), '', nowMs, span, taken);
    expect(collided).toMatchObject({ reason: undefined, amountCents: 500, replayed: false });
    expect(collided.authorizationId).not.toBe(taken);
    expect(collided.authorizationId).toMatch(ID);
    expect(await h.redis.hgetall(authKey)).toEqual(before);

    const free = newAuthorizationId(nowMs);
    const body = swipeBody(shopper, '6.00');
    const fresh = await decide(parsed(body, nowMs), '', nowMs, span, free);
    expect(fresh).toMatchObject({ reason: undefined, authorizationId: free, replayed: false });

    // The processor retries at another pod, whose forward carries another id: the first decision.
    const retry = await decide(parsed(body, nowMs), '', nowMs, span, newAuthorizationId(nowMs));
    expect(retry).toMatchObject({ authorizationId: free, replayed: true });
    const view = await h.getTrip(shopper, trip);
    expect(view.json['authorized_cents']).toBe(1000 + 500 + 600);
  });

  it('a replay under the id of a late decline recorded under another key is overridden, not a conflict', async () => {
    const { shopper, trip } = await tripWithMilk(h);
    const nowMs = Date.now();
    // No transaction id: the key is derived from a 30 s window, which may differ between regions.
    const { transaction_id: _txn, ...body } = swipeBody(shopper, '90.00');
    const atHome = parsed(body, nowMs);
    const id = newAuthorizationId(nowMs);
    const declined = await authorizeSwipe({ config: peered, keys: h.keys, scripts }, atHome, {
      nowMs,
      authorizationId: id,
      signature: '',
      forwarded: true,
    });
    expect(declined).toMatchObject({ reason: 'AMOUNT_EXCEEDS_ALLOWANCE', authorizationId: id });
    const elsewhere = parsed(body, nowMs - 30_000); // the forwarding region's window
    expect(elsewhere.idempotencyKey).not.toBe(atHome.idempotencyKey);
    const entry = journalEntry(id, nowMs, shopper, 9000, elsewhere, body.merchant);
    const result = await replayEntry({ config: h.config, keys: h.keys, scripts }, entry, Date.now(), true);
    expect(result).toMatchObject({ code: 'overridden', tripId: trip, authorizedCents: 9000 });
    const view = await h.getTrip(shopper, trip);
    expect(view.json['authorized_cents']).toBe(9000);
    const auths = view.json['authorizations'] as Record<string, unknown>[];
    expect(auths.map((a) => [a['authorization_id'], a['decision'], a['mode']])).toEqual([
      [id, 'approved', 'fail_open'],
    ]);
  });

  it('a forward arriving after the replay of its own fail-open answer, under another derived key, gets that answer', async () => {
    const { shopper, trip } = await tripWithMilk(h);
    const nowMs = Date.now();
    const { transaction_id: _txn, ...body } = swipeBody(shopper, '7.00');
    const elsewhere = parsed(body, nowMs - 30_000); // the forwarding region's window
    const id = newAuthorizationId(nowMs);
    const entry = journalEntry(id, nowMs, shopper, 700, elsewhere, body.merchant);
    const replayed = await replayEntry({ config: h.config, keys: h.keys, scripts }, entry, Date.now(), true);
    expect(replayed).toMatchObject({ code: 'applied', authorizedCents: 700 });
    const late = await authorizeSwipe({ config: peered, keys: h.keys, scripts }, parsed(body, nowMs), {
      nowMs,
      authorizationId: id,
      signature: '',
      forwarded: true,
    });
    expect(late).toMatchObject({ reason: undefined, authorizationId: id, mode: 'fail_open', replayed: true });
    expect((await h.getTrip(shopper, trip)).json['authorized_cents']).toBe(700);
  });
});
