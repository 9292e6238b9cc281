import { defineConfig } from 'vitest/config';

// Test files that open the embedded ClickHouse (chDB) need a process each: chDB binds one data
// directory per process. `forks` gives every test file its own child process.
//
// The files whose figures hang on time buckets run a second time in a zone that is neither UTC nor
// a whole number of hours from it (chDB takes its zone from the process's TZ): an array of
// DateTime from groupUniqArray lost its UTC zone, and changed tasks were rolled up into the wrong
// hours, only outside UTC.
const IN_ANOTHER_ZONE = [
  'test/integration/rollups.test.ts',
  'test/integration/retention.test.ts',
  'test/integration/e2e-server.test.ts',
  'test/integration/sql-docs.test.ts',
];

export default defineConfig({
  test: {
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    maxWorkers: 2,
    projects: [
      { extends: true, test: { name: 'utc', include: ['test/**/*.test.ts'], env: { TZ: 'UTC' } } },
      {
        extends: true,
        test: { name: 'st-johns', include: IN_ANOTHER_ZONE, env: { TZ: 'America/St_Johns' } },
      },
    ],
  },
});
