/**
 * examples/ts run as a user runs them (`node --import tsx examples/ts/<name>.ts`, with LLM_BASE_URL
 * and LLM_API_KEY) against a live service: they list models, generate, stream tokens, stop on
 * Ctrl-C, and handle RESOURCE_EXHAUSTED with RetryInfo.
 */
import { execFile, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../helpers/server.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

let server: TestServer;
beforeAll(async () => {
  // Tokens 40 ms apart, so a streamed reply lasts long enough to be interrupted.
  server = await startTestServer({ SIM_INTER_TOKEN_MS: "40" });
}, 60_000);
afterAll(async () => {
  await server?.close();
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function env(protocol = "connect"): NodeJS.ProcessEnv {
  return { ...process.env, LLM_BASE_URL: server.baseUrl, LLM_API_KEY: server.key, LLM_PROTOCOL: protocol };
}

/** Runs an example to its end (bounded in time) and returns its exit code and output. */
function runExample(name: string, args: string[] = [], protocol?: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", `examples/ts/${name}.ts`, ...args],
      { cwd: ROOT, env: env(protocol), timeout: 30_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe("examples/ts", () => {
  it("list-models prints the catalogue", async () => {
    const run = await runExample("list-models");
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^sim\/echo \(echo\): context 8192 tokens, \$0\.50 in \/ \$1\.50 out per million; sim:echo CLOSED$/m);
    expect(run.stdout).toMatch(/^sim\/lorem \(lorem\): /m);
  });

  it.each(["connect", "grpc", "grpc-web"])("generate prints the answer and its usage over %s, then exits", async (protocol) => {
    const run = await runExample("generate", ["sim/echo", `Hello over ${protocol}`], protocol);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(`Hello over ${protocol}\n`);
    expect(run.stderr).toMatch(/^model sim\/echo via sim, \d+ in \+ \d+ out tokens, \$0\.\d+, request [0-9a-f-]{36}\n$/);
  });

  it("stream prints tokens as they come and a completion line", async () => {
    const run = await runExample("stream", ["sim/echo", "one two three"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe("one two three\n");
    expect(run.stderr).toMatch(/^\[sim\/echo via sim, request [0-9a-f-]{36}\]\n\[done: 3 tokens, \$0\.\d+, 1 attempt\(s\)\]\n$/);
  });

  it("stream stops on Ctrl-C (SIGINT): the call is cancelled and the service records it so", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", "examples/ts/stream.ts", "sim/lorem", "a long story"], {
      cwd: ROOT,
      env: env("grpc"),
    });
    let stdout = "";
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const firstToken = new Promise<void>((resolve) =>
      child.stdout.on("data", (d: Buffer) => {
        stdout += d.toString();
        resolve();
      }),
    );
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    const killer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    try {
      await firstToken;
      child.kill("SIGINT");
      const code = await exited;
      expect(code).toBe(130);
    } finally {
      clearTimeout(killer);
    }
    expect(stdout.length).toBeGreaterThan(0);
    expect(stderr).toContain("[cancelled]");
    expect(stderr).not.toContain("[done:");

    const requestId = /request ([0-9a-f-]{36})/.exec(stderr)?.[1];
    expect(requestId).toBeDefined();
    const deadline = Date.now() + 5000;
    let row;
    while (!row && Date.now() < deadline) {
      await server.app.ledger.flush();
      row = await server.app.database.db.selectFrom("generations").selectAll().where("request_id", "=", requestId!).executeTakeFirst();
      if (!row) await new Promise((r) => setTimeout(r, 20));
    }
    expect(row?.status).toBe("cancelled");
  });

  it("retry-info reads RESOURCE_EXHAUSTED's ErrorInfo and RetryInfo, waits as told, then gives up", async () => {
    const t0 = Date.now();
    const run = await runExample("retry-info");
    expect(run.code).toBe(1);
    const attempts = run.stderr.trim().split("\n");
    expect(attempts).toHaveLength(2);
    for (const [i, line] of attempts.entries()) {
      expect(line).toMatch(
        new RegExp(`^attempt ${i + 1}: RESOURCE_EXHAUSTED PROVIDER_RATE_LIMITED request [0-9a-f-]{36}, retry after 1500 ms$`),
      );
    }
    expect(run.stdout).toBe("gave up after 2 attempts: RESOURCE_EXHAUSTED (retry after 1500 ms)\n");
    // Between the two calls it waited the 1.5 s RetryInfo asked for.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1500);
  });
});
