import { defineConfig } from 'vitest/config'

export default defineConfig({
  resolve: {
    // Node loads graphql's CommonJS build for Pothos and yoga; make our code get the same copy (one realm).
    alias: [{ find: /^graphql$/, replacement: 'graphql/index.js' }],
  },
  test: {
    include: ['src/**/*.test.ts', 'tests/**/*.test.ts'],
    // Builds dist/ first: tests that start the service as its own process run it as `npm start` does.
    globalSetup: ['tests/globalSetup.ts'],
    // Integration files each start an anvil and a service; two cores run them best one or two at a time.
    fileParallelism: true,
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
})
