// CONTRACT §8 on three regions (docs/regions.md): a swipe anywhere gets the home region's
// decision (native §1 and Stripe §7), a retry in a third region gets the first answer, and
// a frozen home region gives bounded fail-open answers elsewhere that count in the home
// region (Redis trip totals and Postgres) once it is thawed.
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signatureHeader } from '../../src/auth/signature.js';
import {
  processorTrip,
  STRIPE_SECRET,
  LITHIC_SECRET,
  lithicAsaRequest,
  lithicHeaders,
  MARQETA_PASSWORD,
  MARQETA_USER,
  marqetaHeaders,
  marqetaJitRequest,
  stripeEvent,
  stripeHeaders,
  stripeRequestEvent,
} from '../processors/helpers.js';
import { loadConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/observability/logger.js';
import { shopperKey } from '../../src/regions/directory.js';
import { announceHome } from '../../src/regions/regions.js';
import { CHANNEL_SECRET, type Region, SECRET, startRegions, stopStarted, TOKEN } from './threeRegions.js';

const FORWARD_TIMEOUT_MS = 600;
const RUN = randomBytes(3).toString('hex');
const AUTH = { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' };

interface Shopper {
  readonly region: Region;
  readonly id: string;
  readonly trip: string;
  readonly card: string;
  readonly lithicCard: string;
  readonly marqetaCard: string;
}

let regions: Region[] = [];
const shoppers = new Map<string, Shopper>();

interface Answer {
  readonly status: number;
  readonly text: string;
  readonly json: Record<string, unknown>;
  readonly headers: Headers;
  readonly ms: number;
}

async function send(base: string, path: string, init: RequestInit): Promise<Answer> {
  const started = performance.now();
  const res = await fetch(`${base}${path}`, init);
  const text = await res.text();
  const ms = performance.now() - started;
  return { status: res.status, text, json: text === '' ? {} : JSON.parse(text), headers: res.headers, ms };
}

/** A signed §1 swipe: the same (body, headers) may be sent to several regions. */
function nativeSwipe(shopperId: string, amount: string): RequestInit {
  const body = JSON.stringify({
    transaction_id: `txn_${randomBytes(8).toString('hex')}`,
    shopper_id: shopperId,
    amount,
    currency: 'USD',
    merchant: { name: 'SAFEWAY #1234', address: '123 Main Street' },
  });
  const t = Math.floor(Date.now() / 1000);
  return {
    method: 'POST',
    body,
    headers: { 'Content-Type': 'application/json', 'X-Signature': signatureHeader(SECRET, t, body) },
  };
}

function stripeSwipe(
  cardId: string,
  amount: number,
  authorizationId = `iauth_${randomBytes(8).toString('hex')}`,
): RequestInit {
  const body = JSON.stringify(stripeRequestEvent({ authorizationId, cardId, amount }));
  return { method: 'POST', body, headers: stripeHeaders(body) };
}

/** Setup requests a busy pod shed (503 overloaded: nothing done) are sent again, bounded. */
async function setup(base: string, path: string, init: RequestInit): Promise<Answer> {
  for (let attempt = 1; ; attempt++) {
    const answer = await send(base, path, init);
    if (answer.status !== 503 || attempt >= 30) return answer;
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function createShopper(region: Region): Promise<Shopper> {
  const id = `s${region.name}${RUN}`;
  const trip = `t${region.name}${RUN}`;
  const card = `ic_${region.name}${RUN}`;
  const path = `/v1/shoppers/${id}/trips/${trip}`;
  const put = await setup(region.base, path, {
    method: 'PUT',
    headers: AUTH,
    body: JSON.stringify(processorTrip()),
  });
  expect(put.status, put.text).toBe(201);
  const pick = { status: 'picked', quantity: 10, unit_price: '3.49' };
  const picked = await setup(region.base, `${path}/items/milk`, {
    method: 'POST',
    headers: AUTH,
    body: JSON.stringify(pick),
  });
  expect(picked.status, picked.text).toBe(200);
  const c = await setup(region.base, `/v1/shoppers/${id}/cards/stripe/${card}`, {
    method: 'PUT',
    headers: AUTH,
    body: '{}',
  });
  expect(c.status, c.text).toBe(201);
  const lithicCard = randomUUID();
  const marqetaCard = `mq${region.name}${RUN}`;
  for (const [processor, cardId] of [
    ['lithic', lithicCard],
    ['marqeta', marqetaCard],
  ] as const) {
    const r = await setup(region.base, `/v1/shoppers/${id}/cards/${processor}/${cardId}`, {
      method: 'PUT',
      headers: AUTH,
      body: '{}',
    });
    expect(r.status, r.text).toBe(201);
  }
  return { region, id, trip, card, lithicCard, marqetaCard };
}

/** One series of a region's api metrics (labels matched exactly). */
async function metric(r: Region, name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`${r.metricsBase}/metrics`)).text();
  const want = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort();
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)\{([^}]*)\} (\S+)$/.exec(line);
    if (m === null || m[1] !== name) continue;
    const got = (m[2] as string).split(',').sort();
    if (got.join() === want.join()) return Number(m[3]);
  }
  return Number.NaN;
}

function tripOf(s: Shopper, base = s.region.base): Promise<Answer> {
  return send(base, `/v1/shoppers/${s.id}/trips/${s.trip}`, { headers: AUTH });
}

beforeAll(async () => {
  expect(STRIPE_SECRET).toMatch(/^whsec_/);
  regions = await startRegions(['ra', 'rb', 'rc'], FORWARD_TIMEOUT_MS, {
    STRIPE_WEBHOOK_SECRETS: STRIPE_SECRET,
    LITHIC_WEBHOOK_SECRETS: LITHIC_SECRET,
    MARQETA_BASIC_AUTH: `${MARQETA_USER}:${MARQETA_PASSWORD}`,
  });
  for (const r of regions) shoppers.set(r.name, await createShopper(r));
}, 75_000);

afterAll(async () => {
  await stopStarted();
}, 30_000);

function others(r: Region): Shopper[] {
  return [...shoppers.values()].filter((s) => s.region !== r);
}

describe('three regions linked by 40 ms each way', () => {
  it('a swipe in each region for a shopper of each other region gets the home decision', async () => {
    for (const here of regions) {
      for (const s of others(here)) {
        const approved = await send(here.base, '/v1/authorizations', nativeSwipe(s.id, '5.00'));
        expect(approved.status, `${here.name} -> ${s.region.name}: ${approved.text}`).toBe(200);
        expect(approved.json).toMatchObject({ decision: 'approved', mode: 'normal', trip_id: s.trip });
        // The home's record says so: its trip lists the authorization.
        expect((await tripOf(s)).text).toContain(String(approved.json['authorization_id']));
        const declined = await send(here.base, '/v1/authorizations', nativeSwipe(s.id, '999.00'));
        expect(declined.status).toBe(402);
        expect(declined.json['reason']).toBe('AMOUNT_EXCEEDS_ALLOWANCE');
        const stripe = await send(
          here.base,
          '/v1/processors/stripe/authorizations',
          stripeSwipe(s.card, 300),
        );
        expect(stripe.status, stripe.text).toBe(200);
        expect(stripe.json['approved']).toBe(true);
        expect(stripe.headers.get('stripe-version')).not.toBeNull();
        // The trip API is answered by the home region too.
        const view = await tripOf(s, here.base);
        expect(view.status).toBe(200);
        expect(view.text).toBe((await tripOf(s)).text);
      }
    }
    // Lithic (Standard Webhooks headers) and Marqeta (HTTP Basic) at c for a's shopper.
    const [a, , c] = regions as [Region, Region, Region];
    const sa = shoppers.get(a.name) as Shopper;
    const token = randomUUID();
    const asaBody = JSON.stringify(lithicAsaRequest({ token, cardId: sa.lithicCard, amount: 100 }));
    const asa = await send(c.base, '/v1/processors/lithic/asa', {
      method: 'POST',
      body: asaBody,
      headers: lithicHeaders(asaBody),
    });
    expect(asa.json, asa.text).toEqual({ result: 'APPROVED', token });
    const jitBody = JSON.stringify(
      marqetaJitRequest({
        token: `txn${RUN}`,
        jitToken: `jit${RUN}`,
        cardId: sa.marqetaCard,
        amount: '1.00',
      }),
    );
    const jit = await send(c.base, '/v1/processors/marqeta/jit', {
      method: 'POST',
      body: jitBody,
      headers: marqetaHeaders(),
    });
    expect(jit.status, jit.text).toBe(200);
    expect(jit.text).toContain(`"token":"jit${RUN}"`);
    const unknown = await send(regions[0]!.base, '/v1/authorizations', nativeSwipe(`nobody${RUN}`, '1.00'));
    expect(unknown.json['reason']).toBe('UNKNOWN_SHOPPER');
  }, 30_000);

  it('a stale directory entry is dropped, a forged channel request refused, nobody approved unclaimed', async () => {
    const [a, b, c] = regions as [Region, Region, Region];
    // Stage 4's announcement, as the takeover command sends it: "ghost lives in c" (it does not).
    const ghost = `ghost${RUN}`;
    const config = loadConfig({
      NODE_ENV: 'test',
      SIGNATURE_SECRETS: SECRET,
      API_TOKENS: TOKEN,
      REGION: c.name,
      REGION_PEERS: `${b.name}=${b.base}`,
      REGION_SECRETS: CHANNEL_SECRET,
    });
    expect(await announceHome(config, createLogger('error'), c.name, [{ key: shopperKey(ghost) }])).toEqual(
      [],
    );
    const notHome0 = await metric(b, 'region_forward_total', { peer: c.name, outcome: 'not_home' });
    const unknownLabels = { decision: 'declined', reason: 'UNKNOWN_SHOPPER', mode: 'normal' };
    const unknown0 = await Promise.all([b, c].map((r) => metric(r, 'swipe_decisions_total', unknownLabels)));
    const swipe = await send(b.base, '/v1/authorizations', nativeSwipe(ghost, '1.00'));
    expect(swipe.json['reason']).toBe('UNKNOWN_SHOPPER');
    expect(await metric(b, 'region_forward_total', { peer: c.name, outcome: 'not_home' })).toBe(notHome0 + 1);
    // One decline, counted once: where it was answered, not where it was forwarded to.
    const unknown1 = await Promise.all([b, c].map((r) => metric(r, 'swipe_decisions_total', unknownLabels)));
    expect(unknown1.map((n, i) => (n || 0) - (unknown0[i] || 0))).toEqual([1, 0]);
    // A request claiming to come over the channel without its signature: refused, never decided.
    const forged = nativeSwipe(shoppers.get(a.name)!.id, '1.00');
    const headers = { ...(forged.headers as Record<string, string>), 'x-region-origin': b.name };
    const refused = await send(a.base, '/v1/authorizations', { ...forged, headers });
    expect(refused.status).toBe(401);
    expect(refused.json['error']).toBe('invalid_signature');
    expect(await metric(b, 'region_peer_up', { peer: a.name })).toBe(1);
    expect(await metric(b, 'region_forward_total', { peer: a.name, outcome: 'answered' })).toBeGreaterThan(0);
  }, 20_000);

  it('a processor retry in a third region gets the first answer', async () => {
    const [a, b, c] = regions as [Region, Region, Region];
    const s = shoppers.get(a.name) as Shopper;
    const swipe = nativeSwipe(s.id, '2.00');
    const first = await send(b.base, '/v1/authorizations', swipe);
    expect(first.status, first.text).toBe(200);
    const retry = await send(c.base, '/v1/authorizations', swipe);
    expect(retry.status).toBe(first.status);
    expect(retry.text).toBe(first.text);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    // §2 and the trip API elsewhere: the reversal and a pick sent to region c land at the home.
    const txn = (JSON.parse(String(swipe.body)) as { transaction_id: string }).transaction_id;
    const reversalBody = JSON.stringify({ transaction_id: txn, shopper_id: s.id, amount: '2.00' });
    const t = Math.floor(Date.now() / 1000);
    const reversal = await send(c.base, '/v1/authorizations/reversals', {
      method: 'POST',
      body: reversalBody,
      headers: {
        'Content-Type': 'application/json',
        'X-Signature': signatureHeader(SECRET, t, reversalBody),
      },
    });
    expect(reversal.status, reversal.text).toBe(200);
    expect(reversal.text).toContain('"reversed_cents":200');
    const pick = JSON.stringify({ status: 'picked', quantity: 1, unit_price: '2.99' });
    const picked = await send(c.base, `/v1/shoppers/${s.id}/trips/${s.trip}/items/apples`, {
      method: 'POST',
      headers: AUTH,
      body: pick,
    });
    expect(picked.status, picked.text).toBe(200);
    expect(Number((await tripOf(s)).json['picked_cents'])).toBe(3490 + 299);
    // A second open trip for the shopper, asked of another region: refused by the home (one home).
    const second = await send(c.base, `/v1/shoppers/${s.id}/trips/t2${RUN}`, {
      method: 'PUT',
      headers: AUTH,
      body: JSON.stringify(processorTrip()),
    });
    expect(second.status, second.text).toBe(409);
    expect(second.json['error']).toBe('open_trip_exists');
    const iauth = `iauth_${randomBytes(8).toString('hex')}`;
    const stripe = stripeSwipe(s.card, 150, iauth);
    const firstStripe = await send(c.base, '/v1/processors/stripe/authorizations', stripe);
    expect(firstStripe.json['approved']).toBe(true);
    const retryStripe = await send(b.base, '/v1/processors/stripe/authorizations', stripe);
    expect(retryStripe.text).toBe(firstStripe.text);
    expect(retryStripe.headers.get('idempotent-replayed')).toBe('true');
    // Its later event (reversed), delivered to yet another region, is applied at the home.
    const held = Number((await tripOf(s)).json['authorized_cents']);
    const reversed = JSON.stringify(
      stripeEvent('issuing_authorization.updated', {
        id: iauth,
        card: { id: s.card },
        amount: 0,
        status: 'reversed',
      }),
    );
    const event = await send(b.base, '/v1/processors/stripe/events', {
      method: 'POST',
      body: reversed,
      headers: stripeHeaders(reversed),
    });
    expect(event.json['events'], event.text).toEqual([expect.objectContaining({ outcome: 'released' })]);
    expect(Number((await tripOf(s)).json['authorized_cents'])).toBe(held - 150);
  }, 20_000);

  it('a frozen home region: bounded fail-open answers elsewhere, counted at home after SIGCONT', async () => {
    const [a, b, c] = regions as [Region, Region, Region];
    const s = shoppers.get(a.name) as Shopper;
    const before = Number((await tripOf(s)).json['authorized_cents']);
    const pid = a.api.child.pid as number;
    process.kill(pid, 'SIGSTOP');
    const nativeInit = nativeSwipe(s.id, '3.00');
    let native: Answer;
    let stripe: Answer;
    try {
      native = await send(b.base, '/v1/authorizations', nativeInit);
      stripe = await send(c.base, '/v1/processors/stripe/authorizations', stripeSwipe(s.card, 200));
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    expect(native.status, native.text).toBe(200);
    expect(native.json).toMatchObject({ decision: 'approved', mode: 'fail_open' });
    expect(stripe.status, stripe.text).toBe(200);
    expect(stripe.json['approved']).toBe(true);
    // Bounded: the forward deadline, the directory answer from cache, and the journal write.
    for (const answer of [native, stripe]) expect(answer.ms).toBeLessThan(FORWARD_TIMEOUT_MS + 1500);
    const ids = [String(native.json['authorization_id'])];
    // Replayed into the home region: its trip counts both, and its Postgres has the rows.
    const deadline = Date.now() + 20_000;
    let after = before;
    let rows: { authorization_id: string; mode: string }[] = [];
    while (Date.now() < deadline) {
      after = Number((await tripOf(s)).json['authorized_cents']);
      rows = await a.db.query(
        `select authorization_id, mode from authorizations where authorization_id = ?`,
        [ids[0]],
      );
      if (after === before + 500 && rows.length === 1) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(after).toBe(before + 500);
    expect(await metric(b, 'region_failopen_replays_total', { peer: a.name, outcome: 'applied' })).toBe(1);
    expect(await metric(c, 'region_failopen_replays_total', { peer: a.name, outcome: 'applied' })).toBe(1);
    expect(await metric(b, 'region_forward_total', { peer: a.name, outcome: 'timeout' })).toBeGreaterThan(0);
    expect(rows).toEqual([{ authorization_id: ids[0], mode: 'fail_open' }]);
    // The regions that forwarded recorded nothing of their own for a's shopper.
    for (const other of [b, c])
      expect(
        await other.db.query('select authorization_id from authorizations where shopper_id = ?', [s.id]),
      ).toEqual([]);
    // The answer given is the record there too: a retry at the home region gets it.
    const again = await send(a.base, '/v1/authorizations', nativeInit);
    expect(again.text).toBe(native.text);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
  }, 40_000);
});
