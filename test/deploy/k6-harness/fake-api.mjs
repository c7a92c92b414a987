// A small in-memory model of the wire contract (CONTRACT.md §1, §3), enough
// to tell whether the k6 scripts sign correctly, call the right routes and
// expect the contract's answers. It is a model for the load scripts, not the
// service. It accepts FAKE_SIGNATURE_SECRET and FAKE_API_TOKEN; FAKE_MODE=fail_open
// answers every swipe like a pod whose Redis is down.
import { createHmac, timingSafeEqual } from 'node:crypto';

const trips = new Map(); // tid -> trip
const shoppers = new Map(); // sid -> latest tid
const decided = new Map(); // transaction_id -> { fingerprint, status, body }
let authSeq = 0;

const json = (status, body, headers = {}) => ({
  status,
  body: JSON.stringify(body),
  headers: { 'Content-Type': 'application/json', ...headers },
});

function cents(amount) {
  const s = String(amount);
  if (!/^\d+(\.\d{1,2})?$/.test(s)) return null;
  const [whole, frac = ''] = s.split('.');
  return Number(whole) * 100 + Number(frac.padEnd(2, '0'));
}

function milli(quantity) {
  const s = String(quantity);
  if (!/^\d+(\.\d{1,3})?$/.test(s)) return null;
  const [whole, frac = ''] = s.split('.');
  return Number(whole) * 1000 + Number(frac.padEnd(3, '0'));
}

function signatureOk(req) {
  const secret = process.env.FAKE_SIGNATURE_SECRET ?? '';
  const header = req.headers['x-signature'] ?? '';
  const t = /(?:^|,)t=(\d+)/.exec(header)?.[1];
  if (!t || Math.abs(Number(t) - Date.now() / 1000) > 300) return false;
  const want = createHmac('sha256', secret).update(`${t}.${req.body}`).digest();
  return [...header.matchAll(/v1=([0-9a-f]{64})/g)].some((m) =>
    timingSafeEqual(Buffer.from(m[1], 'hex'), want),
  );
}

function allowance(trip) {
  let picked = 0;
  for (const p of trip.picks.values()) picked += Math.floor((p.q * p.p + 500) / 1000);
  const taxed = picked + Math.ceil((picked * trip.taxBps) / 10000);
  const slack = Math.max(trip.tolCents, Math.ceil((taxed * trip.tolBps) / 10000));
  return { picked, ceiling: taxed + slack, left: taxed + slack - trip.authorized };
}

function authorize(req) {
  if (req.headers['content-type'] !== 'application/json')
    return json(415, { error: 'unsupported_media_type' });
  if (!signatureOk(req)) return json(401, { error: 'invalid_signature' });
  const b = JSON.parse(req.body);
  const amount = cents(b.amount);
  if (amount === null || b.shopper_id === undefined || !b.merchant)
    return json(400, { error: 'invalid_request' });
  const key = b.transaction_id ?? req.headers['idempotency-key'];
  const fingerprint = `${b.shopper_id}|${b.merchant.name}|${amount}`;
  if (key !== undefined && decided.has(key)) {
    const first = decided.get(key);
    if (first.fingerprint !== fingerprint) {
      return json(402, { decision: 'declined', reason: 'IDEMPOTENCY_CONFLICT', amount_cents: amount });
    }
    return { ...json(first.status, JSON.parse(first.body)), headers: { 'Idempotent-Replayed': 'true' } };
  }
  const res = decide(b.shopper_id, amount);
  if (key !== undefined) decided.set(key, { fingerprint, status: res.status, body: res.body });
  return res;
}

function decide(sid, amount) {
  const authorization_id = `auth_${++authSeq}`;
  if (process.env.FAKE_MODE === 'fail_open') {
    return amount <= 10000
      ? json(200, { decision: 'approved', authorization_id, amount_cents: amount, mode: 'fail_open' })
      : json(402, {
          decision: 'declined',
          reason: 'STORAGE_UNAVAILABLE',
          authorization_id,
          amount_cents: amount,
        });
  }
  const decline = (reason, left) =>
    json(402, {
      decision: 'declined',
      reason,
      authorization_id,
      amount_cents: amount,
      remaining_cents: left,
    });
  const tid = shoppers.get(String(sid));
  if (tid === undefined) return decline('UNKNOWN_SHOPPER', 0);
  const trip = trips.get(tid);
  const { left } = allowance(trip);
  if (trip.status === 'closed') return decline('TRIP_CLOSED', left);
  // Velocity (CONTRACT §1): FAKE_MAX_SWIPES_PER_MINUTE swipes per trip per 60 s (default 10).
  const nowMs = Date.now();
  trip.swipesMs = (trip.swipesMs ?? []).filter((t) => nowMs - t < 60_000);
  const velocityMax = Number(process.env.FAKE_MAX_SWIPES_PER_MINUTE ?? 10);
  const overVelocity = trip.swipesMs.length >= velocityMax;
  trip.swipesMs.push(nowMs); // a declined swipe counts too
  if (overVelocity) return decline('VELOCITY_LIMIT', left);
  if (trip.picks.size === 0) return decline('NO_ITEMS_PICKED', left);
  if (amount > left) return decline('AMOUNT_EXCEEDS_ALLOWANCE', left);
  trip.authorized += amount;
  return json(200, {
    decision: 'approved',
    authorization_id,
    trip_id: tid,
    amount_cents: amount,
    remaining_cents: left - amount,
    mode: 'normal',
  });
}

function tripApi(req, sid, tid, rest) {
  if (req.headers.authorization !== `Bearer ${process.env.FAKE_API_TOKEN ?? ''}`)
    return json(401, { error: 'unauthorized' });
  const trip = trips.get(tid);
  if (req.method === 'PUT' && rest === undefined) {
    if (trip) return trip.body === req.body ? json(200, view(trip)) : json(409, { error: 'conflict' });
    const b = JSON.parse(req.body);
    const items = new Map();
    for (const o of b.orders) for (const i of o.items) items.set(i.item_id, { q: milli(i.quantity) });
    const t = {
      sid,
      tid,
      body: req.body,
      status: 'open',
      items,
      picks: new Map(),
      authorized: 0,
      taxBps: b.tax_rate_bps ?? 0,
      tolBps: b.tolerance_bps ?? 500,
      tolCents: b.tolerance_cents ?? 200,
    };
    trips.set(tid, t);
    shoppers.set(sid, tid);
    return json(201, view(t));
  }
  if (!trip || trip.sid !== sid) return json(404, { error: 'not_found' });
  if (req.method === 'GET' && rest === undefined) return json(200, view(trip));
  if (req.method === 'POST' && rest === '/close') {
    trip.status = 'closed';
    return json(200, view(trip));
  }
  const item = /^\/items\/([^/]+)$/.exec(rest ?? '')?.[1];
  if (req.method === 'POST' && item !== undefined) {
    if (!trip.items.has(decodeURIComponent(item))) return json(404, { error: 'not_found' });
    const b = JSON.parse(req.body);
    if (b.status !== 'picked') return json(400, { error: 'invalid_request' });
    trip.picks.set(decodeURIComponent(item), { q: milli(b.quantity), p: cents(b.unit_price) });
    trip.status = trip.status === 'open' ? 'shopping' : trip.status;
    return json(200, view(trip));
  }
  return json(404, { error: 'not_found' });
}

function view(trip) {
  const a = allowance(trip);
  return {
    trip_id: trip.tid,
    status: trip.status,
    picked_cents: a.picked,
    authorized_cents: trip.authorized,
    allowance_cents: a.left,
  };
}

export function handle(req) {
  const url = new URL(req.url);
  if (req.method === 'POST' && url.pathname === '/v1/authorizations') return authorize(req);
  const m = /^\/v1\/shoppers\/([^/]+)\/trips\/([^/]+)(\/.*)?$/.exec(url.pathname);
  if (m) return tripApi(req, decodeURIComponent(m[1]), decodeURIComponent(m[2]), m[3]);
  return json(404, { error: 'not_found' });
}
