import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const MAIN = `${ROOT}src/simulator/main.ts`;

function run(args: string[], env: Record<string, string> = {}): ChildProcessWithoutNullStreams {
  // This Node (24) with tsx's loader, whatever `node` on PATH is.
  return spawn(process.execPath, ["--import", "tsx", MAIN, ...args], { cwd: ROOT, env: { ...process.env, ...env } });
}

/** Resolves with the URL the command prints once it listens (and keeps reading its stdout). */
function urlOf(child: ChildProcessWithoutNullStreams): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => {
      out += String(chunk);
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m?.[1]) resolve(m[1]);
    });
    child.once("exit", () => reject(new Error(`exited before listening: ${out}`)));
  });
}

describe("simulator command", () => {
  it("listens on loopback, takes knobs from flags and env, and stops cleanly on SIGTERM", async () => {
    const child = run(["--port", "0", "--status", "503"], { SIM_RETRY_AFTER: "4" });
    try {
      const url = await urlOf(child);
      const res = await fetch(`${url}/v1/chat/completions`, {
        method: "POST",
        body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }] }),
      });
      expect(res.status).toBe(503);
      expect(res.headers.get("retry-after")).toBe("4");
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      const [code] = (await exited) as [number | null];
      expect(code).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });

  it("exits 2 on a knob it cannot use", async () => {
    const child = run(["--port", "0", "--fault", "explode"]);
    let err = "";
    child.stderr.on("data", (c: Buffer) => (err += String(c)));
    const [code] = (await once(child, "exit")) as [number | null];
    expect(code).toBe(2);
    expect(err).toMatch(/--fault must be/);
  });
});
