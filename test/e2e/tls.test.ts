import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LlmService, Role } from "../../gen/ts/llm/v1/llm_service_pb.js";
import { bearer } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

let dir: string;
let server: TestServer;
let ca: Buffer;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "llm-tls-"));
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"), "-days", "1",
    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
  ], { stdio: "ignore" });
  ca = readFileSync(join(dir, "cert.pem"));
  server = await startTestServer({ TLS_CERT_FILE: join(dir, "cert.pem"), TLS_KEY_FILE: join(dir, "key.pem") });
}, 60_000);

afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("TLS from TLS_CERT_FILE/TLS_KEY_FILE", () => {
  it("serves gRPC over HTTP/2 and Connect over HTTP/1.1 on the same TLS port", async () => {
    const baseUrl = `https://localhost:${server.port}`;
    const interceptors = [bearer(server.key)];
    const grpc = createClient(LlmService, createGrpcTransport({ baseUrl, nodeOptions: { ca }, interceptors }));
    const h1 = createClient(LlmService, createConnectTransport({ baseUrl, httpVersion: "1.1", nodeOptions: { ca }, interceptors }));
    const messages = [{ role: Role.USER, content: "over tls" }];
    expect((await grpc.generate({ model: "sim/echo", messages })).text).toBe("over tls");
    expect((await h1.generate({ model: "sim/echo", messages })).text).toBe("over tls");
  });

  it("refuses cleartext on the TLS port", async () => {
    const plain = createClient(LlmService, createConnectTransport({ baseUrl: `http://127.0.0.1:${server.port}`, httpVersion: "1.1" }));
    await expect(plain.listModels({}, { timeoutMs: 2000 })).rejects.toThrow();
  });

  // Last: it shuts the server down (afterAll's close() then finds it stopped).
  it("shuts down without waiting out the grace for idle TLS connections, HTTP/2 and HTTP/1.1", async () => {
    const baseUrl = `https://localhost:${server.port}`;
    const interceptors = [bearer(server.key)];
    const grpc = createClient(LlmService, createGrpcTransport({ baseUrl, nodeOptions: { ca }, interceptors }));
    const h1 = createClient(LlmService, createConnectTransport({ baseUrl, httpVersion: "1.1", nodeOptions: { ca }, interceptors }));
    await grpc.listModels({});
    await h1.listModels({});
    expect(server.app.transport.connections).toBeGreaterThanOrEqual(2);
    const started = Date.now();
    await server.app.shutdown();
    // SHUTDOWN_GRACE_MS is 10 s: an idle keep-alive connection left open would hold the drain that long.
    expect(Date.now() - started).toBeLessThan(5000);
    expect(server.app.transport.connections).toBe(0);
  });
});
