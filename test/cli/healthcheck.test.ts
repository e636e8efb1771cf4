/**
 * The Docker HEALTHCHECK probe (src/cli/healthcheck.ts) against a live service: gRPC health Check over
 * h2c, exit 0 only while SERVING.
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkHealth, healthcheckUrl } from "../../src/cli/healthcheck.js";
import { ServingStatus } from "../../src/server/health.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
}, 60_000);
afterAll(async () => {
  await server?.close();
});

function probe(env: Record<string, string>, args: string[] = []): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", "src/cli/healthcheck.ts", ...args],
      { cwd: ROOT, env: { ...process.env, ...env }, timeout: 20_000 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === "number" ? err.code : null) : 0, stdout, stderr }),
    );
  });
}

describe("healthcheck", () => {
  it("probes a wildcard listen address on loopback, with the scheme TLS asks for", () => {
    expect(healthcheckUrl({ host: "0.0.0.0", port: 8080 })).toBe("http://127.0.0.1:8080");
    expect(healthcheckUrl({ host: "::", port: 8080 })).toBe("http://[::1]:8080");
    expect(healthcheckUrl({ host: "127.0.0.1", port: 9, tls: { certFile: "c", keyFile: "k" } })).toBe("https://127.0.0.1:9");
  });

  it("reports SERVING, then NOT_SERVING while the server drains, and an unknown service", async () => {
    expect(await checkHealth(server.baseUrl)).toEqual({ serving: true, detail: "SERVING" });
    expect(await checkHealth(server.baseUrl, "llm.v1.LlmService")).toEqual({ serving: true, detail: "SERVING" });
    expect((await checkHealth(server.baseUrl, "no.such.Service")).serving).toBe(false);
    server.app.health.set("", ServingStatus.NOT_SERVING);
    try {
      expect(await checkHealth(server.baseUrl)).toEqual({ serving: false, detail: "NOT_SERVING" });
    } finally {
      server.app.health.set("", ServingStatus.SERVING);
    }
  });

  it("fails fast when nothing listens", async () => {
    const t0 = Date.now();
    const result = await checkHealth("http://127.0.0.1:1", "", 1000);
    expect(result.serving).toBe(false);
    expect(Date.now() - t0).toBeLessThan(1500);
  });

  it("runs as the container's command: exit 0 when serving, 1 when nothing answers, 2 on bad config", async () => {
    const ok = await probe({ HOST: "0.0.0.0", PORT: String(server.port) });
    expect(ok.stdout).toBe(`http://127.0.0.1:${server.port} grpc.health.v1.Health/Check: SERVING\n`);
    expect(ok.code).toBe(0);
    expect((await probe({ HOST: "127.0.0.1", PORT: "1" })).code).toBe(1);
    expect((await probe({ PORT: "not-a-port" })).code).toBe(2);
  });

  it("prints its usage for --help instead of asking about a service named --help, and refuses other options", async () => {
    const help = await probe({ HOST: "127.0.0.1", PORT: String(server.port) }, ["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^usage: node dist\/src\/cli\/healthcheck\.js \[service\]\n/);
    expect(help.stdout).not.toContain("Health/Check:");
    expect((await probe({ HOST: "127.0.0.1", PORT: String(server.port) }, ["-h"])).code).toBe(0);
    const unknown = await probe({ HOST: "127.0.0.1", PORT: String(server.port) }, ["--verbose"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown option "--verbose"');
    expect(unknown.stdout).toBe("");
    const named = await probe({ HOST: "127.0.0.1", PORT: String(server.port) }, ["llm.v1.LlmService"]);
    expect(named.stdout).toBe(`http://127.0.0.1:${server.port} grpc.health.v1.Health/Check: SERVING\n`);
    expect(named.code).toBe(0);
  }, 60_000);
});
