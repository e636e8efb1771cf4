/**
 * scripts/build-if-stale.ts: `npm start` rebuilds only when a source is newer than the last build,
 * including a source that was deleted, and never when nothing changed.
 */
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isStale, stampPath } from "../../scripts/build-if-stale.js";

let root: string;
const past = new Date("2026-01-01T00:00:00Z");
const built = new Date("2026-01-02T00:00:00Z");
const later = new Date("2026-01-03T00:00:00Z");

function write(path: string, time: Date): void {
  const full = join(root, path);
  mkdirSync(join(full, ".."), { recursive: true });
  writeFileSync(full, "x");
  utimesSync(full, time, time);
}

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "build-if-stale-"));
  for (const file of ["src/main.ts", "src/server/a.ts", "gen/ts/x_pb.ts", "tsconfig.json", "tsconfig.build.json", "package.json"]) {
    write(file, past);
  }
  for (const dir of ["src/server", "src", "gen/ts", "gen"]) utimesSync(join(root, dir), past, past);
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

function stamp(time: Date): void {
  mkdirSync(join(root, "dist"), { recursive: true });
  writeFileSync(stampPath(root, "server"), "");
  utimesSync(stampPath(root, "server"), time, time);
}

describe("build-if-stale", () => {
  it("builds when the part was never built", () => {
    expect(isStale(root, "server")).toBe(true);
  });

  it("does not build again when nothing changed since the last build", () => {
    stamp(built);
    expect(isStale(root, "server")).toBe(false);
  });

  it("builds when a source file, a config file or a generated file is newer than the last build", () => {
    stamp(built);
    utimesSync(join(root, "src/server/a.ts"), later, later);
    expect(isStale(root, "server")).toBe(true);
    utimesSync(join(root, "src/server/a.ts"), past, past);
    utimesSync(join(root, "tsconfig.build.json"), later, later);
    expect(isStale(root, "server")).toBe(true);
    utimesSync(join(root, "tsconfig.build.json"), past, past);
    write("gen/ts/y_pb.ts", later);
    expect(isStale(root, "server")).toBe(true);
  });

  it("builds when a source file was deleted (its directory's mtime moves)", () => {
    stamp(built);
    rmSync(join(root, "src/server/a.ts"));
    expect(isStale(root, "server")).toBe(true);
  });

  it("ignores what the build writes and files no part reads", () => {
    stamp(built);
    write("dist/src/main.js", later);
    write("README.md", later);
    expect(isStale(root, "server")).toBe(false);
  });
});
