import { availableParallelism } from "node:os";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // A provider's tests sit in its folder (src/providers/<name>/), the rest under test/.
    include: ["test/**/*.test.ts", "src/**/*.test.ts"],
    testTimeout: 20_000,
    hookTimeout: 60_000,
    // One migrated PGlite cluster per run, copied by the tests that need one (initdb takes seconds).
    globalSetup: ["test/setup/pglite-template.ts"],
    // Each file in its own process: PGlite's WASM memory and V8 flags are process-wide.
    pool: "forks",
    // At least two files at a time: vitest's default (cores - 1) runs one at a time on 2 cores, and
    // most files spend much of their time waiting on sockets, child processes and timers.
    maxWorkers: Math.max(2, availableParallelism()),
  },
});
