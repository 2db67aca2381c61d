import { defineConfig } from "vitest/config";

export default defineConfig({
  // graphql ships CJS and ESM builds; one copy for everything, or its instanceof checks fail.
  resolve: { alias: { graphql: "graphql/index.js" } },
  test: {
    // Tiers by suffix: *.unit (no I/O), *.int (real PostgreSQL and NATS, the service in-process),
    // *.e2e (OS processes). `npm run test:unit` etc. pick one; test/tiers.unit.test.ts holds every file to one.
    include: ["test/**/*.test.ts"],
    // The operators' console, built when missing or stale: its browser test loads it from the gateway.
    globalSetup: ["scripts/console-build.ts"],
    // The fault suite is a tier of its own, `npm run test:faults` (vitest.faults.config.ts).
    exclude: ["test/faults/**", "**/node_modules/**"],
    // Each file has its own database and NATS prefix, so files run side by side; two cores, so two at a time.
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
