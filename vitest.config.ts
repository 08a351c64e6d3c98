import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // One local stack (Postgres, Kinesis, DynamoDB, S3) per run; tests isolate themselves by names.
    globalSetup: ["test/support/global-setup.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: "forks",
    maxWorkers: 2,
    reporters: ["default"],
    // EMF metric lines would flood the test output; tests that check metrics capture them.
    env: { TOTES_METRICS: "off" }
  }
})
