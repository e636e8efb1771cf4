/**
 * The service's command line (src/main.ts with src/cli/server-usage.ts), run as a process: `--help`
 * prints the usage and every variable of the README's configuration table and exits 0 without starting
 * anything; any other argument exits 2 before the configuration is read.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { parseServerArgs } from "../../src/cli/server-usage.js";
import { ENV_KEYS } from "../../src/config.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const dataDir = mkdtempSync(join(tmpdir(), "server-usage-"));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      join(ROOT, "node_modules/.bin/node"),
      ["--import", "tsx", "src/main.ts", ...args],
      // A bad PORT: the arguments must be dealt with before the configuration is read (which would exit 2
      // naming PORT), so nothing can start even when that is broken.
      { cwd: ROOT, env: { PATH: process.env["PATH"] ?? "", DATA_DIR: join(dataDir, "data"), PORT: "not-a-port" }, timeout: 30_000 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === "number" ? err.code : null) : 0, stdout, stderr }),
    );
  });
}

describe("the service's command line", () => {
  it("--help prints the usage and every configuration variable, and starts nothing", async () => {
    const { code, stdout } = await run(["--help"]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^usage: npm start/);
    for (const key of ENV_KEYS) expect(stdout).toMatch(new RegExp(`\\b${key}\\b`));
    expect(existsSync(join(dataDir, "data"))).toBe(false);
  }, 60_000);

  it("exits 2 on an unknown flag or any other argument, naming it", async () => {
    const flag = await run(["--port", "9000"]);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain('unknown argument "--port"');
    expect(flag.stdout).toBe("");
    const word = await run(["serve"]);
    expect(word.code).toBe(2);
    expect(word.stderr).toContain('unknown argument "serve"');
  }, 60_000);

  it("takes -h like --help and nothing else", () => {
    expect(parseServerArgs([])).toEqual({ kind: "run" });
    expect(parseServerArgs(["-h"])).toEqual({ kind: "help" });
    expect(parseServerArgs(["--help", "--x"])).toMatchObject({ kind: "error", message: expect.stringContaining('"--x"') });
  });
});
