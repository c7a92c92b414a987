import { defineConfig } from 'vitest/config';

// Files that measure the service's own latency under injected faults run alone,
// after every other file: on 2 cores a concurrent file (a Postgres crash loop,
// initdb, 100k-row reconcile) steals the CPU and the disk those measurements
// are about, and an api stalled by someone else's fsync looks like a fault of ours.
const EXCLUSIVE = ['test/failopen/faults.test.ts'];

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default', './test/helpers/summary-reporter.ts'],
    pool: 'forks',
    projects: [
      {
        extends: true,
        test: {
          name: 'parallel',
          include: ['test/**/*.test.ts'],
          exclude: EXCLUSIVE,
          // 2 cores: two files at a time. Every file uses its own Redis key prefix
          // (and private servers on their own ports), so files never share state.
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'exclusive',
          include: EXCLUSIVE,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
