// Fail-open drill. Start it, then have an SRE freeze Redis (e.g. `redis-cli
// DEBUG SLEEP 30` on a primary, or a NetworkPolicy that drops the api's
// egress to Redis) for part of the run, then thaw it. Every answer must still
// be a decision within the processor's 1 s deadline: approvals in mode
// `normal` or `fail_open`, declines with any reason (STORAGE_UNAVAILABLE
// included). DRILL_EXPECT_FAILOPEN=true also requires that fail-open was seen.
//
//   k6 run -e BASE_URL=... -e SIGNATURE_SECRET=... -e API_TOKEN=... -e DURATION=10m loadtest/failopen-drill.js
import {
  closeTrips,
  envNum,
  envStr,
  failOpenSwipe,
  newRunId,
  requireCredentials,
  seedTrips,
} from './common.js';

const thresholds = {
  http_req_failed: ['rate<0.001'],
  'http_req_duration{scenario:failopen_drill}': ['p(99)<1000', 'max<2000'],
  swipe_decision_ok: ['rate>0.999'],
  'checks{scenario:failopen_drill}': ['rate>0.999'],
};
if (envStr('DRILL_EXPECT_FAILOPEN', 'false') === 'true') {
  thresholds.swipe_fail_open_approvals = ['count>0'];
}

export const options = {
  setupTimeout: '300s',
  scenarios: {
    failopen_drill: {
      executor: 'constant-arrival-rate',
      exec: 'drill',
      rate: envNum('RATE', 100),
      timeUnit: '1s',
      duration: envStr('DURATION', '10m'),
      preAllocatedVUs: 50,
      maxVUs: 500,
    },
  },
  thresholds,
};

export function setup() {
  requireCredentials();
  const runId = newRunId();
  return { runId, trips: seedTrips(runId, envNum('TRIPS', 2000)) };
}

export function drill(data) {
  failOpenSwipe(data);
}

export function teardown(data) {
  closeTrips(data.trips);
}
