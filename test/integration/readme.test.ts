// The README's curl example must keep working exactly as written (only the
// port is changed to the test instance's).
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { DEV_API_TOKEN, DEV_SIGNATURE_SECRET } from '../../src/config/config.js';
import { startTestApi, type TestApi } from '../helpers/api.js';

const run = promisify(execFile);
let h: TestApi;
beforeAll(async () => {
  h = await startTestApi({
    SIGNATURE_SECRETS: DEV_SIGNATURE_SECRET,
    API_TOKENS: DEV_API_TOKEN,
    PARTITIONS: '64',
  });
});
afterAll(async () => {
  await h?.stop();
});

test('the quick-start curl example approves a swipe', async () => {
  const readme = readFileSync('README.md', 'utf8');
  const quickStart = /## Quick start\n\n```sh\n([^\n]+)\n([^\n]+)\n```/.exec(readme);
  expect(quickStart?.[1]).toMatch(/^npm ci && npm start\b/);
  expect(quickStart?.[2]).toMatch(/^npm ci && npm test\b/);
  const block = /```sh\n(TOKEN=[\s\S]*?)```/.exec(readme)?.[1];
  expect(block).toBeDefined();
  // Each test instance has its own shopper namespace: the shopper id 456 and trip-1 are fine here.
  const script = (block as string).replaceAll('localhost:8080', `127.0.0.1:${h.api.port}`);
  const { stdout } = await run('bash', ['-euo', 'pipefail', '-c', script]);
  expect(stdout).toMatch(/HTTP\/1\.1 200 OK/);
  expect(stdout).toMatch(/"decision":"approved".*"amount_cents":2000,"remaining_cents":2013,"mode":"normal"/);
});
