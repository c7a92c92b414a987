// Shopping mix: whole trips end to end — create, pick items, split swipes,
// re-pick (replace), a decline on the allowance, close, a swipe after close —
// each answer checked against the allowance formula (CONTRACT.md §3).
//
//   k6 run -e BASE_URL=... -e SIGNATURE_SECRET=... -e API_TOKEN=... -e VUS=50 loadtest/shopping-mix.js
import { envNum, envStr, newRunId, requireCredentials, shoppingMix } from './common.js';

export const options = {
  scenarios: {
    shopping_mix: {
      executor: 'ramping-vus',
      exec: 'mix',
      startVUs: 1,
      stages: [
        { target: envNum('VUS', 20), duration: '30s' },
        { target: envNum('VUS', 20), duration: envStr('DURATION', '3m') },
        { target: 0, duration: '10s' },
      ],
    },
  },
  thresholds: {
    'http_req_duration{endpoint:authorize}': [`p(99)<${envNum('P99_MS', 50)}`],
    'http_req_duration{endpoint:item_update}': ['p(99)<100'],
    'http_req_duration{endpoint:trip_put}': ['p(99)<100'],
    http_req_failed: ['rate<0.001'],
    swipe_decision_ok: ['rate>0.999'],
    'checks{scenario:shopping_mix}': ['rate>0.999'],
  },
};

export function setup() {
  requireCredentials();
  return { runId: newRunId() };
}

export function mix(data) {
  shoppingMix(data.runId);
}
