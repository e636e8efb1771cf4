/**
 * Vitest global setup: one embedded database cluster for the whole run, created and migrated
 * once, that tests copy (test/helpers/pglite-template.ts) instead of creating their own.
 *
 * Creating a cluster runs PGlite's initdb in a child process that compiles the 9 MB WASM module:
 * seconds of CPU each time, and the suite opened a fresh data directory in about 30 places. A copy
 * of the finished cluster (~40 MB, ~1,000 files) takes well under a second, and opening it skips
 * initdb and the migrations. Tests about creating a cluster (test/ledger/migrations.test.ts) still
 * start from an empty directory.
 *
 * It runs in a child process so that PGlite's WASM memory and its process-wide V8 flags stay out
 * of the vitest process.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import type { TestProject } from "vitest/node";

declare module "vitest" {
  export interface ProvidedContext {
    /** A closed, migrated PGlite cluster: copy it to `<DATA_DIR>/pglite`. */
    pgliteTemplate: string;
  }
}

const ROOT = resolve(import.meta.dirname, "../..");

export default async function setup(project: TestProject): Promise<() => void> {
  const dir = mkdtempSync(join(tmpdir(), "llm-pglite-template-"));
  try {
    await promisify(execFile)(process.execPath, ["--import", "tsx", "test/fixtures/pglite-template.ts", dir], { cwd: ROOT, timeout: 120_000 });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  project.provide("pgliteTemplate", join(dir, "pglite"));
  return () => rmSync(dir, { recursive: true, force: true });
}
