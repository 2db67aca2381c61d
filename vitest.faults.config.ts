import { defineConfig } from "vitest/config";

/**
 * The fault suite (`npm run test:faults`): test/faults/*.faults.test.ts, kept
 * out of `npm test`. Each file runs the roles as OS processes and kills,
 * stops or starves them; the table of every scenario is written to
 * test-artifacts/faults.md at the end.
 */
export default defineConfig({
  resolve: { alias: { graphql: "graphql/index.js" } },
  test: {
    include: ["test/faults/**/*.faults.test.ts"],
    globalSetup: ["test/faults/global-setup.ts"],
    pool: "forks",
    // Each file runs five or six processes of its own on two cores.
    maxWorkers: 2,
    testTimeout: 300_000,
    hookTimeout: 180_000,
  },
});
