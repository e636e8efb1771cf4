import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 20_000,
    hookTimeout: 60_000,
    // One migrated PGlite cluster per run, copied by the tests that need one (initdb takes seconds).
    globalSetup: ["test/setup/pglite-template.ts"],
    // Each file in its own process: PGlite's WASM memory and V8 flags are process-wide.
    pool: "forks",
  },
});
