// Swipe storm: a constant arrival rate of signed webhook swipes spread over
// seeded trips (many trips keep most swipes under the per-trip velocity
// limit; VELOCITY_LIMIT declines still count as answers).
//
//   k6 run -e BASE_URL=... -e SIGNATURE_SECRET=... -e API_TOKEN=... \
//     -e RATE=1000 -e DURATION=5m -e TRIPS=5000 loadtest/swipe-storm.js
import {
  closeTrips,
  envNum,
  envStr,
  newRunId,
  requireCredentials,
  seedTrips,
  swipeOnSeededTrip,
} from './common.js';

const RATE = envNum('RATE', 500);

export const options = {
  setupTimeout: '600s',
  teardownTimeout: '300s',
  scenarios: {
    swipe_storm: {
      executor: 'ramping-arrival-rate',
      exec: 'storm',
      startRate: Math.ceil(RATE / 10),
      timeUnit: '1s',
      preAllocatedVUs: Math.max(20, Math.ceil(RATE / 5)),
      maxVUs: Math.max(100, RATE * 2),
      stages: [
        { target: RATE, duration: '30s' },
        { target: RATE, duration: envStr('DURATION', '3m') },
        { target: 0, duration: '10s' },
      ],
    },
  },
  thresholds: {
    'http_req_duration{scenario:swipe_storm}': [`p(99)<${envNum('P99_MS', 50)}`, 'p(50)<10'],
    http_req_failed: ['rate<0.001'],
    swipe_decision_ok: ['rate>0.999'],
    'checks{scenario:swipe_storm}': ['rate>0.999'],
  },
};

export function setup() {
  requireCredentials();
  const runId = newRunId();
  return { runId, trips: seedTrips(runId, envNum('TRIPS', 2000)) };
}

export function storm(data) {
  swipeOnSeededTrip(data, envStr('AMOUNT', '0.50'));
}

export function teardown(data) {
  closeTrips(data.trips);
}
