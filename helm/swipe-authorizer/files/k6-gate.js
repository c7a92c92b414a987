// The release gate: `helm test` runs this (grafana/k6 image, script from the
// chart's ConfigMap, a copy of this file) against the api Service, and
// k8s/upgrade.sh rolls the release back when it fails. k6 exits non-zero
// when any threshold below is missed.
//
//   k6 run -e BASE_URL=http://127.0.0.1:8080 -e SIGNATURE_SECRET=... -e API_TOKEN=... loadtest/gate.js
//
// Knobs (env): GATE_RATE swipes/s (200), GATE_DURATION (60s), GATE_TRIPS seed
// trips (400), GATE_P99_MS (50), GATE_ERROR_RATE (0.001).
import {
  closeTrips,
  envNum,
  envStr,
  idempotentRetries,
  newRunId,
  requireCredentials,
  seedTrips,
  shoppingMix,
  swipeOnSeededTrip,
} from './common.js';

const RATE = envNum('GATE_RATE', 200);
const DURATION = envStr('GATE_DURATION', '60s');
const TRIPS = envNum('GATE_TRIPS', 400);
const P99_MS = envNum('GATE_P99_MS', 50);
const ERROR_RATE = envNum('GATE_ERROR_RATE', 0.001);

export const options = {
  setupTimeout: '180s',
  teardownTimeout: '120s',
  discardResponseBodies: false,
  scenarios: {
    swipe_storm: {
      executor: 'constant-arrival-rate',
      exec: 'storm',
      rate: RATE,
      timeUnit: '1s',
      duration: DURATION,
      preAllocatedVUs: Math.max(10, Math.ceil(RATE / 10)),
      maxVUs: Math.max(50, RATE),
    },
    shopping_mix: {
      executor: 'constant-vus',
      exec: 'mix',
      vus: 5,
      duration: DURATION,
    },
    idempotent_retries: {
      executor: 'constant-vus',
      exec: 'retries',
      vus: 2,
      duration: DURATION,
    },
  },
  thresholds: {
    'http_req_duration{scenario:swipe_storm}': [`p(99)<${P99_MS}`],
    'http_req_duration{endpoint:authorize}': [`p(99)<${P99_MS}`],
    'http_req_duration{endpoint:item_update}': [`p(99)<${P99_MS * 2}`],
    http_req_failed: [`rate<${ERROR_RATE}`],
    swipe_decision_ok: ['rate>0.999'],
    'checks{scenario:swipe_storm}': ['rate>0.999'],
    'checks{scenario:shopping_mix}': ['rate>0.999'],
    'checks{scenario:idempotent_retries}': ['rate>0.999'],
    // The storm must really run at RATE: more than 1 % dropped means the
    // service (or the gate Pod) could not keep up.
    dropped_iterations: [`count<${Math.ceil(RATE * durationSeconds(DURATION) * 0.01) + 1}`],
  },
};

function durationSeconds(d) {
  const m = /^(\d+)(s|m)$/.exec(d);
  if (!m) throw new Error(`GATE_DURATION must look like 60s or 5m, got "${d}"`);
  return Number(m[1]) * (m[2] === 'm' ? 60 : 1);
}

export function setup() {
  requireCredentials();
  const runId = newRunId();
  return { runId, trips: seedTrips(runId, TRIPS) };
}

export function storm(data) {
  swipeOnSeededTrip(data, '0.50');
}

export function mix(data) {
  shoppingMix(data.runId);
}

export function retries(data) {
  idempotentRetries(data.runId);
}

export function teardown(data) {
  closeTrips(data.trips);
}
