// The release gate: k8s/upgrade.sh runs this against a canary of the new
// version (its own release and Service, no production traffic) with `helm
// test` (grafana/k6 image, script from the chart's ConfigMap, a copy of this
// file) or the k6-operator, and promotes the release only when it passes.
// k6 exits non-zero when any threshold below is missed.
//
//   k6 run -e BASE_URL=http://127.0.0.1:8080 -e SIGNATURE_SECRET=... -e API_TOKEN=... loadtest/gate.js
//
// Knobs (env): GATE_RATE swipes/s (200), GATE_DURATION (60s), GATE_TRIPS seed
// trips (1600), GATE_P99_MS (50), GATE_ERROR_RATE (0.001),
// GATE_MAX_SWIPES_PER_MINUTE (10: the service's MAX_SWIPES_PER_MINUTE).
//
// Production-shaped load: the storm swipes the seeded trips round-robin, so
// each trip gets GATE_RATE x 60 / GATE_TRIPS swipes a minute. That must stay
// below the velocity limit, or the gate measures VELOCITY_LIMIT declines
// instead of decisions that approve: setup() refuses such a mix. The decline
// mix is asserted: the storm's swipes are all approved in normal mode; the
// shopping mix declines only where its checks expect it (TRIP_CLOSED,
// AMOUNT_EXCEEDS_ALLOWANCE); no swipe anywhere is VELOCITY_LIMIT, fail-open
// or STORAGE_UNAVAILABLE.
import { fail } from 'k6';
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
const TRIPS = envNum('GATE_TRIPS', 1600);
const MAX_SWIPES_PER_MINUTE = envNum('GATE_MAX_SWIPES_PER_MINUTE', 10);
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
    // The decline mix: a storm swipe on a seeded, picked trip is approved.
    'swipe_decisions{scenario:swipe_storm,decision:declined}': ['count<1'],
    'swipe_decisions{reason:VELOCITY_LIMIT}': ['count<1'],
    // The shopping mix's declines are the ones its checks expect, and they happen.
    'swipe_decisions{scenario:shopping_mix,reason:TRIP_CLOSED}': ['count>0'],
    'swipe_decisions{scenario:shopping_mix,reason:AMOUNT_EXCEEDS_ALLOWANCE}': ['count>0'],
    // A gate that passes while Redis is degraded proves nothing.
    swipe_fail_open_approvals: ['count<1'],
    swipe_storage_unavailable: ['count<1'],
  },
};

function durationSeconds(d) {
  const m = /^(\d+)(s|m)$/.exec(d);
  if (!m) throw new Error(`GATE_DURATION must look like 60s or 5m, got "${d}"`);
  return Number(m[1]) * (m[2] === 'm' ? 60 : 1);
}

export function setup() {
  requireCredentials();
  if (RATE * 60 >= TRIPS * MAX_SWIPES_PER_MINUTE) {
    fail(
      `GATE_TRIPS=${TRIPS} too few for GATE_RATE=${RATE}: each trip would get ${(RATE * 60) / TRIPS} swipes a minute, ` +
        `at or above the velocity limit (${MAX_SWIPES_PER_MINUTE}); the gate would measure VELOCITY_LIMIT declines`,
    );
  }
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
