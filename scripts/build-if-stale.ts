/**
 * `node scripts/build-if-stale.ts server [web]`: runs `npm run build:<part>` for each part whose inputs
 * changed since its last successful build, so that `npm start`, `npm run keys` and `npm run simulator`
 * compile once and then start in about a second.
 *
 * A part is stale when its stamp file (dist/.build-<part>) is missing or older than any of its inputs:
 * a file's mtime, or a directory's (which changes when an entry is added, removed or renamed, so a
 * deleted source counts too). `git pull`, `git checkout` and an editor all give the files they touch a
 * new mtime, so `git pull && npm start` rebuilds what changed and nothing when nothing did. The stamp
 * gets the time the build started, so an edit made while it ran still counts as newer. A failed build
 * leaves no stamp and exits with its status.
 *
 * Plain Node (type stripping, node: modules only): it runs before anything is compiled.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "..");

/** What each build part reads; directories are walked (node_modules and dist never are). */
export const PART_INPUTS: Record<string, readonly string[]> = {
  server: ["src", "gen/ts", "tsconfig.json", "tsconfig.build.json", "package.json", "package-lock.json"],
  web: ["web", "sdk/ts/src", "gen/ts", "tsconfig.json", "package.json", "package-lock.json"],
};

const SKIP = new Set(["node_modules", "dist", ".data", ".tmp"]);

/** The newest mtime (ms) among `path` and, for a directory, everything under it; 0 when it is absent. */
export function newestMtime(path: string): number {
  let stat;
  try {
    stat = statSync(path);
  } catch {
    return 0;
  }
  let newest = stat.mtimeMs;
  if (stat.isDirectory()) {
    for (const entry of readdirSync(path)) {
      if (!SKIP.has(entry)) newest = Math.max(newest, newestMtime(join(path, entry)));
    }
  }
  return newest;
}

export function stampPath(root: string, part: string): string {
  return join(root, "dist", `.build-${part}`);
}

/** True when the part has never been built here or an input is newer than its last build. */
export function isStale(root: string, part: string): boolean {
  let built: number;
  try {
    built = statSync(stampPath(root, part)).mtimeMs;
  } catch {
    return true;
  }
  const inputs = PART_INPUTS[part] ?? [];
  return inputs.some((input) => newestMtime(join(root, input)) > built);
}

function main(parts: string[]): number {
  const unknown = parts.filter((p) => !(p in PART_INPUTS));
  if (parts.length === 0 || unknown.length > 0) {
    process.stderr.write(`usage: node scripts/build-if-stale.ts <${Object.keys(PART_INPUTS).join("|")}>...\n`);
    return 2;
  }
  for (const part of parts) {
    if (!isStale(ROOT, part)) continue;
    const started = new Date();
    process.stderr.write(`build-if-stale: building ${part} (not built yet, or sources changed since the last build)\n`);
    const npm = process.env["npm_execpath"];
    // Under npm, run its own CLI with this Node; otherwise whatever `npm` is on PATH.
    const run = npm
      ? spawnSync(process.execPath, [npm, "run", "--silent", `build:${part}`], { cwd: ROOT, stdio: "inherit" })
      : spawnSync("npm", ["run", "--silent", `build:${part}`], { cwd: ROOT, stdio: "inherit" });
    if (run.status !== 0) return run.status ?? 1;
    const stamp = stampPath(ROOT, part);
    mkdirSync(join(ROOT, "dist"), { recursive: true });
    writeFileSync(stamp, `${started.toISOString()}\n`);
    utimesSync(stamp, started, started);
  }
  return 0;
}

if (import.meta.filename === resolve(process.argv[1] ?? "")) process.exit(main(process.argv.slice(2)));
