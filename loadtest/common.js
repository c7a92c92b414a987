// Shared k6 helpers for every load script: signing (CONTRACT.md §1), the trip
// API (§3), seeding and the scenario bodies. k6 runs this file (ES module, no
// Node APIs). The helm chart ships a byte-for-byte copy as
// helm/swipe-authorizer/files/k6-common.js (test/deploy checks it).
//
// Environment (__ENV): BASE_URL, SIGNATURE_SECRET (or SIGNATURE_SECRETS, the
// first entry is used), API_TOKEN (or API_TOKENS, first entry).
import { check, fail } from 'k6';
import crypto from 'k6/crypto';
import exec from 'k6/execution';
import http from 'k6/http';
import { Counter, Rate } from 'k6/metrics';

export const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
export const SIGNATURE_SECRET = firstEntry(__ENV.SIGNATURE_SECRET || __ENV.SIGNATURE_SECRETS);
export const API_TOKEN = firstEntry(__ENV.API_TOKEN || __ENV.API_TOKENS);

/** The synthetic store every load trip shops at; swipes use the same merchant. */
export const STORE = { name: 'K6 Loadtest Store', address: '1 Loadtest Way' };

/** Every decline reason of CONTRACT.md §1, in its order. */
export const DECLINE_REASONS = [
  'IDEMPOTENCY_CONFLICT',
  'UNKNOWN_SHOPPER',
  'TRIP_CLOSED',
  'NO_ACTIVE_TRIP',
  'CURRENCY_MISMATCH',
  'MERCHANT_MISMATCH',
  'LOCATION_MISMATCH',
  'VELOCITY_LIMIT',
  'NO_ITEMS_PICKED',
  'AMOUNT_EXCEEDS_ALLOWANCE',
  'STORAGE_UNAVAILABLE',
];

// 200 approved and 402 declined are answers, not failures; 201 = trip created.
http.setResponseCallback(http.expectedStatuses(200, 201, 402));

export const decisions = new Counter('swipe_decisions');
export const decisionOk = new Rate('swipe_decision_ok');
export const failOpenApprovals = new Counter('swipe_fail_open_approvals');
export const storageUnavailable = new Counter('swipe_storage_unavailable');

function firstEntry(list) {
  const first = String(list || '')
    .split(',')
    .map((s) => s.trim())
    .find((s) => s.length > 0);
  return first || '';
}

export function envNum(name, fallback) {
  const raw = __ENV[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n)) throw new Error(`${name} must be a number, got "${raw}"`);
  return n;
}

export function envStr(name, fallback) {
  const raw = __ENV[name];
  return raw === undefined || raw === '' ? fallback : raw;
}

/** Refuses to run without credentials: a gate that only sees 401s proves nothing. */
export function requireCredentials() {
  if (SIGNATURE_SECRET === '') fail('SIGNATURE_SECRET (or SIGNATURE_SECRETS) is not set');
  if (API_TOKEN === '') fail('API_TOKEN (or API_TOKENS) is not set');
}

/** A fresh id per run (and per k6-operator runner): keeps shoppers and trips unique. */
export function newRunId() {
  const rnd = Math.floor(Math.random() * 36 ** 6).toString(36);
  return `${Date.now().toString(36)}${rnd}`;
}

export function shopperId(runId, n) {
  return `k6-${runId}-${n}`;
}

export function tripId(runId, n) {
  return `k6t-${runId}-${n}`;
}

/** `t=<unix s>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>` (CONTRACT.md §1). */
export function signature(rawBody, nowS) {
  const t = nowS === undefined ? Math.floor(Date.now() / 1000) : nowS;
  const v1 = crypto.hmac('sha256', SIGNATURE_SECRET, `${t}.${rawBody}`, 'hex');
  return `t=${t},v1=${v1}`;
}

function bearer(extraTags) {
  return {
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${API_TOKEN}` },
    tags: extraTags,
  };
}

/** The signed webhook request, for `http.post` or `http.batch`. */
export function authorizationRequest(swipe, extraHeaders) {
  const body = JSON.stringify(swipe);
  const headers = Object.assign(
    { 'Content-Type': 'application/json', 'X-Signature': signature(body) },
    extraHeaders || {},
  );
  return {
    method: 'POST',
    url: `${BASE_URL}/v1/authorizations`,
    body,
    params: { headers, tags: { name: 'POST /v1/authorizations', endpoint: 'authorize' } },
  };
}

export function authorize(swipe, extraHeaders) {
  const req = authorizationRequest(swipe, extraHeaders);
  return http.post(req.url, req.body, req.params);
}

export function swipe(sid, amount, transactionId) {
  const body = { shopper_id: sid, amount, currency: 'USD', merchant: STORE };
  if (transactionId) body.transaction_id = transactionId;
  return body;
}

export function tripPath(sid, tid) {
  return `${BASE_URL}/v1/shoppers/${encodeURIComponent(sid)}/trips/${encodeURIComponent(tid)}`;
}

/** Three lines, money chosen so the allowance math has one exact answer (see shoppingMix). */
export function tripBody() {
  return {
    merchant: STORE,
    currency: 'USD',
    tax_rate_bps: 0,
    tolerance_bps: 500,
    tolerance_cents: 200,
    orders: [
      {
        order_id: 'o-1',
        items: [
          { item_id: 'milk', quantity: 3, unit_price: '3.49' },
          { item_id: 'apples', quantity: '1.500', unit: 'lb', unit_price: '2.99' },
          { item_id: 'bread', quantity: 1, unit_price: '4.25' },
        ],
      },
    ],
  };
}

export function putTripRequest(sid, tid) {
  return {
    method: 'PUT',
    url: tripPath(sid, tid),
    body: JSON.stringify(tripBody()),
    params: bearer({ name: 'PUT /v1/shoppers/{sid}/trips/{tid}', endpoint: 'trip_put' }),
  };
}

export function pickRequest(sid, tid, itemId, pick) {
  return {
    method: 'POST',
    url: `${tripPath(sid, tid)}/items/${encodeURIComponent(itemId)}`,
    body: JSON.stringify(pick),
    params: bearer({ name: 'POST /v1/shoppers/{sid}/trips/{tid}/items/{item}', endpoint: 'item_update' }),
  };
}

export function closeRequest(sid, tid) {
  return {
    method: 'POST',
    url: `${tripPath(sid, tid)}/close`,
    body: '{}',
    params: bearer({ name: 'POST /v1/shoppers/{sid}/trips/{tid}/close', endpoint: 'trip_close' }),
  };
}

export function getTrip(sid, tid) {
  return http.get(
    tripPath(sid, tid),
    bearer({ name: 'GET /v1/shoppers/{sid}/trips/{tid}', endpoint: 'trip_get' }),
  );
}

function send(req) {
  return http.request(req.method, req.url, req.body, req.params);
}

export function json(res) {
  try {
    return JSON.parse(res.body);
  } catch (_e) {
    return null;
  }
}

/** True when `res` is a well-formed decision (200 approved / 402 declined). */
export function isDecision(res) {
  const body = json(res);
  if (body === null) return false;
  if (res.status === 200) return body.decision === 'approved' && typeof body.authorization_id === 'string';
  if (res.status === 402) return body.decision === 'declined' && DECLINE_REASONS.indexOf(body.reason) >= 0;
  return false;
}

/** Counts one swipe's outcome in the custom metrics and returns the parsed body (or null). */
export function recordDecision(res) {
  const ok = isDecision(res);
  decisionOk.add(ok);
  const body = ok ? json(res) : null;
  if (body !== null) {
    const mode = body.mode || 'normal';
    decisions.add(1, { decision: body.decision, reason: body.reason || 'none', mode });
    if (body.decision === 'approved' && mode === 'fail_open') failOpenApprovals.add(1);
    if (body.reason === 'STORAGE_UNAVAILABLE') storageUnavailable.add(1);
  }
  return body;
}

function chunks(list, size) {
  const out = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}

/**
 * Creates `count` trips (one shopper each) and picks every item, so each trip
 * can be swiped at once. Aborts the test when fewer than 99 % are ready: a
 * gate must not pass on a service that cannot create trips.
 */
export function seedTrips(runId, count) {
  const trips = [];
  for (let i = 0; i < count; i++) trips.push({ sid: shopperId(runId, i), tid: tripId(runId, i) });
  let ready = 0;
  for (const group of chunks(trips, 50)) {
    const created = http.batch(group.map((t) => putTripRequest(t.sid, t.tid)));
    const picks = [];
    group.forEach((t, i) => {
      if (created[i].status === 201 || created[i].status === 200) {
        picks.push(pickRequest(t.sid, t.tid, 'milk', { status: 'picked', quantity: 3, unit_price: '3.49' }));
        picks.push(
          pickRequest(t.sid, t.tid, 'apples', { status: 'picked', quantity: '1.500', unit_price: '2.99' }),
        );
        picks.push(pickRequest(t.sid, t.tid, 'bread', { status: 'picked', quantity: 1, unit_price: '4.25' }));
      }
    });
    const picked = picks.length > 0 ? http.batch(picks) : [];
    for (let i = 0; i + 2 < picked.length; i += 3) {
      if (picked[i].status === 200 && picked[i + 1].status === 200 && picked[i + 2].status === 200) ready++;
    }
  }
  const ok = check(ready, { 'seed: trips ready': (n) => n >= Math.ceil(count * 0.99) });
  if (!ok) fail(`seeding failed: ${ready}/${count} trips ready at ${BASE_URL}`);
  return trips;
}

export function closeTrips(trips) {
  for (const group of chunks(trips, 50)) http.batch(group.map((t) => closeRequest(t.sid, t.tid)));
}

/** One swipe on a seeded trip (arrival-rate scenarios). Any decision is a success. */
export function swipeOnSeededTrip(data, amount) {
  const trip = data.trips[exec.scenario.iterationInTest % data.trips.length];
  const txn = `k6x-${data.runId}-${exec.vu.idInTest}-${exec.vu.iterationInScenario}`;
  const res = authorize(swipe(trip.sid, amount, txn));
  const body = recordDecision(res);
  check(res, { 'swipe: 200 approved or 402 declined': () => body !== null });
  return body;
}

function expectDecision(res, name, decision, reason, remainingCents) {
  const body = recordDecision(res);
  return check(res, {
    [`${name}: ${decision}${reason ? ` ${reason}` : ''}`]: () =>
      body !== null && body.decision === decision && (reason === undefined || body.reason === reason),
    [`${name}: remaining_cents ${remainingCents}`]: () =>
      body !== null && remainingCents !== undefined && body.remaining_cents === remainingCents,
  });
}

/**
 * A whole shopping trip, checked against the allowance formula (CONTRACT.md §3)
 * with tax 0 %, tolerance max(200 ¢, 5 %):
 *   picks milk 2×349 + apples 1.5 lb×299 (=448.5 → 449) + bread 425 = 1572 → ceiling 1772
 *   swipe 10.00 ✔ (772 left), 5.72 ✔ (200 left)
 *   re-pick milk 3×349 (replaces, picked 1921 → ceiling 2121, 549 left)
 *   swipe 5.50 ✘ AMOUNT_EXCEEDS_ALLOWANCE, 3.49 ✔ (200 left)
 *   close; swipe 1.00 ✘ TRIP_CLOSED
 */
export function shoppingMix(runId) {
  const n = `m${exec.vu.idInTest}-${exec.vu.iterationInScenario}`;
  const sid = shopperId(runId, n);
  const tid = tripId(runId, n);
  const created = send(putTripRequest(sid, tid));
  if (!check(created, { 'mix: trip created (201)': (r) => r.status === 201 })) return;
  const picks = http.batch([
    pickRequest(sid, tid, 'milk', { status: 'picked', quantity: 2, unit_price: '3.49' }),
    pickRequest(sid, tid, 'apples', { status: 'picked', quantity: '1.500', unit_price: '2.99' }),
    pickRequest(sid, tid, 'bread', { status: 'picked', quantity: 1, unit_price: '4.25' }),
  ]);
  check(picks, { 'mix: items picked (200)': (rs) => rs.every((r) => r.status === 200) });
  expectDecision(authorize(swipe(sid, '10.00', `${tid}-1`)), 'mix swipe 10.00', 'approved', undefined, 772);
  expectDecision(authorize(swipe(sid, '5.72', `${tid}-2`)), 'mix swipe 5.72', 'approved', undefined, 200);
  const repick = send(pickRequest(sid, tid, 'milk', { status: 'picked', quantity: 3, unit_price: '3.49' }));
  check(repick, { 'mix: item re-picked (200)': (r) => r.status === 200 });
  expectDecision(
    authorize(swipe(sid, '5.50', `${tid}-3`)),
    'mix swipe 5.50',
    'declined',
    'AMOUNT_EXCEEDS_ALLOWANCE',
    549,
  );
  expectDecision(authorize(swipe(sid, '3.49', `${tid}-4`)), 'mix swipe 3.49', 'approved', undefined, 200);
  check(send(closeRequest(sid, tid)), { 'mix: trip closed (200)': (r) => r.status === 200 });
  const after = recordDecision(authorize(swipe(sid, '1.00', `${tid}-5`)));
  check(after, {
    'mix: swipe after close declined TRIP_CLOSED': (b) => b !== null && b.reason === 'TRIP_CLOSED',
  });
}

function sameJson(a, b) {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  if (ka.length !== kb.length) return false;
  return ka.every((k, i) => k === kb[i] && sameJson(a[k], b[k]));
}

/**
 * Idempotency (CONTRACT.md §1): a retry gets the same status and body with
 * `Idempotent-Replayed: true`; concurrent duplicates get one decision; the same
 * key with another amount is IDEMPOTENCY_CONFLICT; retries consume nothing.
 * Trip: bread 425 picked → ceiling 625.
 */
export function idempotentRetries(runId) {
  const n = `r${exec.vu.idInTest}-${exec.vu.iterationInScenario}`;
  const sid = shopperId(runId, n);
  const tid = tripId(runId, n);
  if (!check(send(putTripRequest(sid, tid)), { 'retry: trip created (201)': (r) => r.status === 201 }))
    return;
  const pick = send(pickRequest(sid, tid, 'bread', { status: 'picked', quantity: 1, unit_price: '4.25' }));
  check(pick, { 'retry: item picked (200)': (r) => r.status === 200 });

  const first = authorize(swipe(sid, '2.00', `${tid}-a`));
  const firstBody = recordDecision(first);
  const again = authorize(swipe(sid, '2.00', `${tid}-a`));
  const againBody = recordDecision(again);
  check(again, {
    'retry: first swipe approved': () => firstBody !== null && firstBody.decision === 'approved',
    'retry: replay has the same status': (r) => r.status === first.status,
    'retry: replay has the same body': () => sameJson(firstBody, againBody),
    'retry: replay is marked Idempotent-Replayed': (r) => String(r.headers['Idempotent-Replayed']) === 'true',
  });

  const burst = http.batch([1, 2, 3].map(() => authorizationRequest(swipe(sid, '1.00', `${tid}-b`))));
  const bodies = burst.map((r) => recordDecision(r));
  check(burst, {
    'retry: concurrent duplicates share one decision': () =>
      bodies.every((b) => b !== null && b.authorization_id === bodies[0].authorization_id),
  });

  const conflict = recordDecision(authorize(swipe(sid, '3.00', `${tid}-a`)));
  check(conflict, {
    'retry: same key, other amount declined IDEMPOTENCY_CONFLICT': (b) =>
      b !== null && b.reason === 'IDEMPOTENCY_CONFLICT',
  });

  const state = json(getTrip(sid, tid));
  check(state, {
    'retry: retries consumed nothing (authorized 300)': (s) => s !== null && s.authorized_cents === 300,
  });
  send(closeRequest(sid, tid));
}

/**
 * Fail-open drill (run while an SRE freezes Redis): every answer must still be
 * a decision; approvals are `normal` or `fail_open`; any decline reason is
 * allowed, STORAGE_UNAVAILABLE included.
 */
export function failOpenSwipe(data) {
  const body = swipeOnSeededTrip(data, envStr('DRILL_AMOUNT', '5.00'));
  check(body, {
    'drill: approval mode is normal or fail_open': (b) =>
      b !== null && (b.decision !== 'approved' || ['normal', 'fail_open'].includes(b.mode)),
  });
}
