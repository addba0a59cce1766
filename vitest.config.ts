import { defineConfig } from 'vitest/config';

// Suites that measure request timing against a fake venue's clock run alone, after the rest,
// so another suite's CPU load on this 2-core machine cannot push a request into the next window.
const TIMING = ['test/rate-limit.test.ts'];

export default defineConfig({
  test: {
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: { name: 'main', include: ['test/**/*.test.ts'], exclude: TIMING, sequence: { groupOrder: 0 } },
      },
      {
        // The ClickHouse suite again in server mode (CLICKHOUSE_URL, over HTTP): see its header.
        extends: true,
        test: { name: 'clickhouse-server', include: ['test/clickhouse.test.ts'], env: { TICKFLOW_TEST_CLICKHOUSE: 'server' }, sequence: { groupOrder: 0 } },
      },
      {
        extends: true,
        test: { name: 'timing', include: TIMING, maxWorkers: 1, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
