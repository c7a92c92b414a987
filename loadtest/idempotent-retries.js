// Idempotent retries: replays, concurrent duplicates and key conflicts
// (CONTRACT.md §1, Idempotency), under load.
//
//   k6 run -e BASE_URL=... -e SIGNATURE_SECRET=... -e API_TOKEN=... loadtest/idempotent-retries.js
import { envNum, envStr, idempotentRetries, newRunId, requireCredentials } from './common.js';

export const options = {
  scenarios: {
    idempotent_retries: {
      executor: 'constant-vus',
      exec: 'retries',
      vus: envNum('VUS', 10),
      duration: envStr('DURATION', '2m'),
    },
  },
  thresholds: {
    'http_req_duration{endpoint:authorize}': [`p(99)<${envNum('P99_MS', 50)}`],
    http_req_failed: ['rate<0.001'],
    swipe_decision_ok: ['rate>0.999'],
    // Idempotency is correctness, not performance: no check may fail.
    'checks{scenario:idempotent_retries}': ['rate==1'],
  },
};

export function setup() {
  requireCredentials();
  return { runId: newRunId() };
}

export function retries(data) {
  idempotentRetries(data.runId);
}
