// Two suites: unit tests sit beside the code and need nothing running; integration tests under
// test/integration talk to the real local servers started by deploy/local/services.sh.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['services/**/*.test.ts'],
          environment: 'node',
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          environment: 'node',
          testTimeout: 120_000,
          hookTimeout: 120_000,
          // The suites share four real servers on a 2-core machine; running files one at a time keeps
          // them from starving each other.
          fileParallelism: false,
        },
      },
    ],
  },
});
