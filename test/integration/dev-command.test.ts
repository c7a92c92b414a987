// `npm start` runs `node dist/cli.js dev`: migrate, then api + persister as
// child processes. Checked as a real process tree, stopped with SIGTERM.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, expect, test } from 'vitest';
import { createTestDb, type TestDb } from '../persister/helpers/pg.js';
import { cleanPrefix } from '../persister/helpers/redis.js';

let db: TestDb | undefined;
const prefix = `tdev${randomBytes(4).toString('hex')}`;
afterAll(async () => {
  await db?.drop();
  const redis = new Redis();
  await cleanPrefix(redis, prefix);
  redis.disconnect();
});

async function poll(url: string, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const status = await fetch(url).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) return status;
    await new Promise((r) => setTimeout(r, 200));
  }
  return 0;
}

test('dev starts api and persister, and both stop on SIGTERM', async () => {
  db = await createTestDb();
  const child = spawn(process.execPath, ['dist/cli.js', 'dev'], {
    env: {
      ...process.env,
      NODE_ENV: 'development',
      PORT: '18091',
      METRICS_PORT: '18092',
      REDIS_PREFIX: prefix,
      DATABASE_URL: db.url,
      LOG_LEVEL: 'warn',
      FAILOPEN_JOURNAL_PATH: `/tmp/${prefix}.jsonl`,
    },
    stdio: 'ignore',
  });
  try {
    expect(await poll('http://127.0.0.1:18091/readyz', 30_000)).toBe(200);
    expect(await poll('http://127.0.0.1:18092/metrics', 5_000)).toBe(200);
    expect(await poll('http://127.0.0.1:18093/healthz', 15_000)).toBe(200); // the persister
  } finally {
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  }
}, 90_000);
