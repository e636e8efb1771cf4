/**
 * Data directories that start with the run's migrated PGlite cluster (test/setup/pglite-template.ts)
 * already in place, so the service or openDatabase() opens it instead of running initdb.
 */
import { cpSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inject } from "vitest";

/** Copies the template cluster into `<dataDir>/pglite` (dataDir may exist; its pglite folder must not). */
export function seedPgliteCluster(dataDir: string): void {
  cpSync(inject("pgliteTemplate"), join(dataDir, "pglite"), { recursive: true, errorOnExist: true, force: false });
}

/** A new temp directory (named after `prefix`) holding a copy of the template cluster. */
export function seededDataDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  seedPgliteCluster(dir);
  return dir;
}
