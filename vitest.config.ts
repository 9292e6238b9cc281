import { defineConfig } from 'vitest/config';

// Test files that open the embedded ClickHouse (chDB) need a process each: chDB binds one data
// directory per process. `forks` gives every test file its own child process.
export default defineConfig({
  test: {
    pool: 'forks',
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    maxWorkers: 2,
  },
});
