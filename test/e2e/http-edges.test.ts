/**
 * The transport's edges over real sockets: CORS, request size limits,
 * malformed and excessive timeouts, x-request-id, and the one-port protocol
 * sniffer under fragmented and garbage input.
 */
import http2 from "node:http2";
import net from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadRequestSchema, ErrorInfoSchema } from "../../gen/ts/google/rpc/error_details_pb.js";
import { Health } from "../../gen/ts/grpc/health/v1/health_pb.js";
import { GenerateRequestSchema, Role } from "../../gen/ts/llm/v1/llm_service_pb.js";
import { connectClient, llmClient, type ProtocolName } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const ALLOWED_ORIGIN = "http://app.example";
const MAX_REQUEST_BYTES = 65_536;
const MAX_DEADLINE_MS = 1000;

let server: TestServer;
beforeAll(async () => {
  // One server for the whole file (PGlite takes seconds to start); none of these settings disturbs another's test.
  server = await startTestServer({
    CORS_ORIGINS: ALLOWED_ORIGIN,
    MAX_REQUEST_BYTES: String(MAX_REQUEST_BYTES),
    MAX_DEADLINE_MS: String(MAX_DEADLINE_MS),
    DEFAULT_DEADLINE_MS: String(MAX_DEADLINE_MS),
  });
}, 60_000);
afterAll(async () => {
  await server?.close();
});

const user = (content: string) => ({ role: Role.USER, content });

async function rejection(p: Promise<unknown>): Promise<ConnectError> {
  try {
    await p;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("expected the call to fail");
}

/** A Connect JSON unary call over HTTP/1.1 with plain fetch, as a browser would make it. */
function connectJson(path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${server.baseUrl}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/** Whether the server still answers a normal call. */
async function expectHealthy(protocol: ProtocolName = "grpc"): Promise<void> {
  const res = await llmClient(server.baseUrl, protocol, server.key).generate({ model: "sim/echo", messages: [user("still here")] });
  expect(res.text).toBe("still here");
}

describe("CORS", () => {
  const preflight = (origin: string) =>
    fetch(`${server.baseUrl}/llm.v1.LlmService/Generate`, {
      method: "OPTIONS",
      headers: {
        origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type, connect-protocol-version, authorization, x-grpc-web",
      },
    });

  it("answers a preflight from an allowed origin with 204, the echoed origin and the Connect/gRPC-web headers", async () => {
    const res = await preflight(ALLOWED_ORIGIN);
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe(ALLOWED_ORIGIN);
    expect(res.headers.get("access-control-allow-methods")).toContain("POST");
    const allowed = (res.headers.get("access-control-allow-headers") ?? "").split(/\s*,\s*/);
    expect(allowed).toEqual(
      expect.arrayContaining(["content-type", "connect-protocol-version", "x-grpc-web", "authorization", "connect-timeout-ms", "grpc-timeout"]),
    );
    const exposed = (res.headers.get("access-control-expose-headers") ?? "").split(/\s*,\s*/);
    expect(exposed).toEqual(expect.arrayContaining(["grpc-status", "grpc-message", "grpc-status-details-bin", "x-request-id", "x-client-request-id"]));
    expect(res.headers.get("vary")?.toLowerCase()).toContain("origin");
  });

  it("gives a preflight from another origin no CORS headers at all", async () => {
    const res = await preflight("http://evil.example");
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
    expect(res.headers.get("access-control-allow-headers")).toBeNull();
    expect(res.headers.get("access-control-expose-headers")).toBeNull();
  });

  it("echoes the allowed origin on an actual Connect POST and exposes x-request-id", async () => {
    const res = await connectJson("/llm.v1.LlmService/ListModels", "{}", {
      origin: ALLOWED_ORIGIN,
      authorization: `Bearer ${server.key}`,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBe(ALLOWED_ORIGIN);
    expect(res.headers.get("access-control-expose-headers")).toContain("x-request-id");
    expect(res.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    const body = (await res.json()) as { models: { id: string }[] };
    expect(body.models.map((m) => m.id)).toContain("sim/echo");
  });

  it("puts CORS headers on an error response too, so the browser can read the error", async () => {
    const res = await connectJson("/llm.v1.LlmService/ListModels", "{}", { origin: ALLOWED_ORIGIN });
    expect(res.status).toBe(401);
    expect(res.headers.get("access-control-allow-origin")).toBe(ALLOWED_ORIGIN);
    expect(((await res.json()) as { code: string }).code).toBe("unauthenticated");
  });

  it("answers another origin's actual POST without any CORS header", async () => {
    const res = await connectJson("/llm.v1.LlmService/ListModels", "{}", {
      origin: "http://evil.example",
      authorization: `Bearer ${server.key}`,
    });
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
  });
});

describe("request size limit", () => {
  const big = "word ".repeat(40_000); // 200 KB

  it("refuses an oversize gRPC request with RESOURCE_EXHAUSTED and keeps serving", async () => {
    const err = await rejection(
      llmClient(server.baseUrl, "grpc", server.key).generate({ model: "sim/echo", messages: [user(big)] }),
    );
    expect(err.code).toBe(Code.ResourceExhausted);
    await expectHealthy("grpc");
  });

  it("refuses an oversize Connect JSON request with resource_exhausted and keeps serving", async () => {
    const res = await connectJson(
      "/llm.v1.LlmService/Generate",
      { model: "sim/echo", messages: [{ role: "ROLE_USER", content: big }] },
      { authorization: `Bearer ${server.key}` },
    );
    expect(((await res.json()) as { code: string }).code).toBe("resource_exhausted");
    expect(res.status).toBe(429);
    await expectHealthy("connect-h1");
  });

  it("accepts a request just under the limit", async () => {
    // One 60 KB word: one token for the context window, nearly all of the byte limit.
    const word = "x".repeat(60_000);
    const res = await llmClient(server.baseUrl, "grpc", server.key).generate({ model: "sim/echo", messages: [user(word)] });
    expect(res.text).toBe(word);
  });
});

/** One gRPC call over a raw HTTP/2 stream; returns grpc-status and grpc-message from headers or trailers. */
function rawGrpc(headers: Record<string, string>, body: Uint8Array): Promise<{ status: string | undefined; message: string | undefined }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(server.baseUrl);
    session.on("error", reject);
    const frame = Buffer.alloc(5 + body.length);
    frame.writeUInt32BE(body.length, 1);
    frame.set(body, 5);
    const stream = session.request({
      ":method": "POST",
      ":path": "/llm.v1.LlmService/Generate",
      "content-type": "application/grpc",
      te: "trailers",
      authorization: `Bearer ${server.key}`,
      ...headers,
    });
    let status: string | undefined;
    let message: string | undefined;
    const take = (h: http2.IncomingHttpHeaders) => {
      if (typeof h["grpc-status"] === "string") status = h["grpc-status"];
      if (typeof h["grpc-message"] === "string") message = decodeURIComponent(h["grpc-message"]);
    };
    stream.on("response", take);
    stream.on("trailers", take);
    stream.on("error", reject);
    stream.resume();
    stream.on("close", () => {
      session.close();
      resolve({ status, message });
    });
    stream.end(frame);
  });
}

describe("timeouts", () => {
  const request = () => toBinary(GenerateRequestSchema, create(GenerateRequestSchema, { model: "sim/echo", messages: [user("t")] }));

  it("a well-formed grpc-timeout on a raw HTTP/2 gRPC call succeeds (the raw client is sound)", async () => {
    const { status } = await rawGrpc({ "grpc-timeout": "500m" }, request());
    expect(status).toBe("0");
  });

  it("a malformed grpc-timeout is INVALID_ARGUMENT", async () => {
    const { status, message } = await rawGrpc({ "grpc-timeout": "abc" }, request());
    expect(status).toBe(String(Code.InvalidArgument));
    expect(message).toContain("timeout");
  });

  it.each(["-5", "abc", "1.5"])("a malformed connect-timeout-ms (%s) over HTTP/1.1 is invalid_argument", async (value) => {
    const res = await connectJson(
      "/llm.v1.LlmService/Generate",
      { model: "sim/echo", messages: [{ role: "ROLE_USER", content: "t" }] },
      { authorization: `Bearer ${server.key}`, "connect-timeout-ms": value },
    );
    expect(res.status).toBe(400);
    expect(((await res.json()) as { code: string }).code).toBe("invalid_argument");
  });

  it.each(["grpc", "connect-h1"] as const)("a client timeout beyond MAX_DEADLINE_MS is INVALID_ARGUMENT (%s)", async (protocol) => {
    const client = llmClient(server.baseUrl, protocol, server.key);
    const err = await rejection(client.generate({ model: "sim/echo", messages: [user("t")] }, { timeoutMs: 5000 }));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.rawMessage).toContain(String(MAX_DEADLINE_MS));
    // Within the limit the same call works.
    const ok = await client.generate({ model: "sim/echo", messages: [user("t")] }, { timeoutMs: MAX_DEADLINE_MS });
    expect(ok.text).toBe("t");
  });
});

describe("x-request-id", () => {
  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

  async function callWith(given: string, protocol: ProtocolName): Promise<{ requestId: string | null; clientRequestId: string | null; id: string }> {
    let requestId: string | null = null;
    let clientRequestId: string | null = null;
    const res = await llmClient(server.baseUrl, protocol, server.key).generate(
      { model: "sim/echo", messages: [user("id")] },
      {
        headers: { "x-request-id": given },
        onHeader: (h) => {
          requestId = h.get("x-request-id");
          clientRequestId = h.get("x-client-request-id");
        },
      },
    );
    return { requestId, clientRequestId, id: res.id };
  }

  /** The ledger rows carrying a client request id, once the ledger has written them. */
  async function rowsFor(clientRequestId: string) {
    await server.app.ledger.flush();
    return server.app.database.db
      .selectFrom("generations")
      .select(["request_id", "client_request_id", "tenant"])
      .where("client_request_id", "=", clientRequestId)
      .execute();
  }

  it.each(["grpc", "connect-h1"] as const)("answers with the server's own id, and echoes the caller's as x-client-request-id (%s)", async (protocol) => {
    const given = `req-${protocol}-0123:abc.DEF_9`;
    const { requestId, clientRequestId, id } = await callWith(given, protocol);
    expect(requestId).toMatch(UUID);
    expect(id).toBe(requestId);
    expect(clientRequestId).toBe(given);
  });

  it.each(["grpc", "connect-h1"] as const)("two calls with the same caller id leave two ledger rows under distinct server ids (%s)", async (protocol) => {
    const given = `reused-${protocol}-${Date.now()}`;
    const first = await callWith(given, protocol);
    const second = await callWith(given, protocol);
    expect(first.id).not.toBe(second.id);
    const rows = await rowsFor(given);
    expect(rows.map((r) => r.request_id).sort()).toEqual([first.id, second.id].sort());
    expect(rows.every((r) => r.client_request_id === given && r.tenant === "acme")).toBe(true);
  });

  it("a caller cannot take over another call's ledger row by sending its request id", async () => {
    const victim = await callWith(`victim-${Date.now()}`, "grpc");
    const intruder = await callWith(victim.id, "connect-h1");
    expect(intruder.id).not.toBe(victim.id);
    await server.app.ledger.flush();
    const rows = await server.app.database.db
      .selectFrom("generations")
      .select(["request_id", "client_request_id"])
      .where("request_id", "in", [victim.id, intruder.id])
      .execute();
    expect(rows).toHaveLength(2);
    expect(rows.find((r) => r.request_id === intruder.id)?.client_request_id).toBe(victim.id);
  });

  it("gives a call without x-request-id a server id and no x-client-request-id", async () => {
    let requestId: string | null = null;
    let clientRequestId: string | null = "unset";
    const res = await llmClient(server.baseUrl, "grpc", server.key).generate(
      { model: "sim/echo", messages: [user("id")] },
      { onHeader: (h) => ((requestId = h.get("x-request-id")), (clientRequestId = h.get("x-client-request-id"))) },
    );
    expect(requestId).toMatch(UUID);
    expect(res.id).toBe(requestId);
    expect(clientRequestId).toBeNull();
  });

  it.each([
    ["spaces", "has some spaces"],
    ["a quote", 'a"b'],
  ])("keeps a caller id with %s as it was sent", async (_what, given) => {
    const { requestId, clientRequestId } = await callWith(given, "connect-h1");
    expect(requestId).toMatch(UUID);
    expect(clientRequestId).toBe(given);
  });

  it.each(["grpc", "connect-h1"] as const)("refuses a caller id of 300 characters with INVALID_ARGUMENT naming x-request-id (%s)", async (protocol) => {
    const err = await rejection(
      llmClient(server.baseUrl, protocol, server.key).generate(
        { model: "sim/echo", messages: [user("id")] },
        { headers: { "x-request-id": "x".repeat(300) } },
      ),
    );
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.findDetails(BadRequestSchema)[0]?.fieldViolations.map((v) => v.field)).toEqual(["x-request-id"]);
    expect(err.findDetails(ErrorInfoSchema)[0]?.metadata["request_id"]).toMatch(UUID);
    expect(err.metadata.get("x-request-id")).toMatch(UUID);
  });

  it("carries both ids in the ErrorInfo and headers of a call refused before any handler ran", async () => {
    const err = await rejection(
      llmClient(server.baseUrl, "grpc").listModels({}, { headers: { "x-request-id": "auth-fail-1" } }),
    );
    expect(err.code).toBe(Code.Unauthenticated);
    const info = err.findDetails(ErrorInfoSchema)[0];
    expect(info?.metadata["request_id"]).toMatch(UUID);
    expect(info?.metadata["client_request_id"]).toBe("auth-fail-1");
    expect(err.metadata.get("x-request-id")).toBe(info?.metadata["request_id"]);
    expect(err.metadata.get("x-client-request-id")).toBe("auth-fail-1");
  });
});

/**
 * A TCP relay in front of the server that forwards the first `slowBytes`
 * bytes of every client connection one byte per write, each after the
 * previous one has been flushed and a macrotask has passed, so the sniffer
 * sees the start of the connection in fragments.
 */
async function startTrickleRelay(targetPort: number, slowBytes: number) {
  const sockets = new Set<net.Socket>();
  const relay = net.createServer((client) => {
    const upstream = net.connect(targetPort, "127.0.0.1");
    upstream.setNoDelay(true);
    sockets.add(client).add(upstream);
    const closeBoth = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", closeBoth).on("close", closeBoth);
    upstream.on("error", closeBoth).on("close", closeBoth);
    upstream.pipe(client);
    let sent = 0;
    let queue = Promise.resolve();
    client.on("data", (chunk: Buffer) => {
      client.pause();
      queue = queue.then(async () => {
        for (let i = 0; i < chunk.length; ) {
          const n = sent < slowBytes ? 1 : chunk.length - i;
          const piece = chunk.subarray(i, i + n);
          await new Promise<void>((resolve) => upstream.write(piece, () => resolve()));
          if (sent < slowBytes) await new Promise<void>((resolve) => setTimeout(resolve, 1));
          sent += n;
          i += n;
        }
        client.resume();
      });
    });
  });
  await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
  const port = (relay.address() as net.AddressInfo).port;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => relay.close(() => resolve()));
    },
  };
}

/** Opens a connection, writes the bytes, and waits until the server closes it or `graceMs` passes. */
function sendAndClose(bytes: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(server.port, "127.0.0.1", () => {
      socket.end(bytes, () => socket.destroy());
    });
    socket.on("error", reject);
    socket.on("close", () => resolve());
  });
}

describe("protocol sniffing on the shared port", () => {
  it("serves gRPC over HTTP/2 when the preface arrives one byte at a time", async () => {
    const relay = await startTrickleRelay(server.port, 24);
    try {
      const res = await llmClient(relay.baseUrl, "grpc", server.key).generate({ model: "sim/echo", messages: [user("trickled")] });
      expect(res.text).toBe("trickled");
    } finally {
      await relay.close();
    }
  });

  it("serves Connect over HTTP/1.1 when the request line arrives one byte at a time, starting like the preface", async () => {
    // "POST" shares its first byte with "PRI * HTTP/2.0": the sniffer must wait, then choose HTTP/1.1.
    const relay = await startTrickleRelay(server.port, 24);
    try {
      const health = connectClient(Health, relay.baseUrl, "connect-h1");
      const res = await health.check({ service: "" });
      expect(res.status).toBe(1);
    } finally {
      await relay.close();
    }
  });

  it.each([
    ["garbage bytes", Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00, 0xff])],
    ["half an HTTP/2 preface", Buffer.from("PRI * HTTP/2.0\r\n")],
    ["a full preface then garbage", Buffer.concat([Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), Buffer.from("nonsense frames")])],
    ["a broken HTTP/1.1 request", Buffer.from("GARBAGE / HTTP/9.9\r\n\r\n")],
    ["nothing", Buffer.alloc(0)],
  ])("a connection that sends %s and closes does not disturb the server", async (_what, bytes) => {
    await sendAndClose(bytes);
    await expectHealthy("grpc");
    await expectHealthy("connect-h1");
  });
});
