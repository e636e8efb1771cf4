/**
 * The direct RPC path (src/server/fast-path/): what it takes and what it leaves to connect-node,
 * deadlines and cancellation reaching the handler, and — against the whole service — the same
 * bytes on the wire as connect-node for successes, errors and protocol faults.
 */
import http from "node:http";
import http2 from "node:http2";
import { brotliDecompressSync, gunzipSync } from "node:zlib";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { EmbedRequestSchema, GenerateRequestSchema, GenerateResponseSchema, LlmService, Role } from "../../gen/ts/llm/v1/llm_service_pb.js";
import { createFastPath } from "../../src/server/fast-path/index.js";
import { grpcJsClient, grpcMetadata, llmClient } from "../helpers/clients.js";
import { envelope, frames, h1Request, h2Request } from "../helpers/raw-http.js";
import { PushQueue } from "../../src/core/push-queue.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const request = (model: string, content = "fast path parity") =>
  toBinary(GenerateRequestSchema, create(GenerateRequestSchema, { model, messages: [{ role: Role.USER, content }] }));

const embedRequest = (model: string, inputs: string[]) => toBinary(EmbedRequestSchema, create(EmbedRequestSchema, { model, inputs, dimensions: 6 }));

/** A request message of exactly `bytes` bytes (the prompt's length adjusted to it). */
function requestOfSize(bytes: number): Uint8Array {
  for (let n = bytes; n > 0; n--) {
    const message = request("sim/echo", "s".repeat(n));
    if (message.byteLength === bytes) return message;
  }
  throw new Error(`no request of ${bytes} bytes`);
}

/** An envelope header declaring `declared` bytes, followed by only `sent` of them. */
function truncatedEnvelope(declared: number, sent: number): Buffer {
  const out = Buffer.alloc(5 + sent, 0x20);
  out[0] = 0;
  out.writeUInt32BE(declared, 1);
  return out;
}

describe("the fast path against connect-node, same service, same bytes", () => {
  let fast: TestServer;
  let slow: TestServer;

  beforeAll(async () => {
    // Each server numbers its calls the same way, so the server's request ids (in headers, bodies
    // and error details) match byte for byte; every case sends one call to each.
    const sequence = () => {
      let n = 0;
      return () => `parity-${String(++n).padStart(8, "0")}`;
    };
    [fast, slow] = await Promise.all([
      startTestServer({ MAX_REQUEST_BYTES: "4096", MAX_DEADLINE_MS: "60000" }, { newRequestId: sequence() }),
      startTestServer({ MAX_REQUEST_BYTES: "4096", MAX_DEADLINE_MS: "60000", RPC_FAST_PATH: "false" }, { newRequestId: sequence() }),
    ]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([fast?.close(), slow?.close()]);
  });

  type Case = { name: string; h1?: boolean; path: string; headers: Record<string, string>; body: Uint8Array; auth?: boolean };
  const grpc = { "content-type": "application/grpc", te: "trailers" };
  const cases: Case[] = [
    { name: "gRPC unary success", path: "/llm.v1.LlmService/Generate", headers: grpc, body: envelope(request("sim/echo")) },
    { name: "gRPC unary success (+proto)", path: "/llm.v1.LlmService/Generate", headers: { ...grpc, "content-type": "application/grpc+proto" }, body: envelope(request("sim/echo")) },
    { name: "gRPC unary NOT_FOUND with details", path: "/llm.v1.LlmService/Generate", headers: grpc, body: envelope(request("no/such-model")) },
    { name: "gRPC Embed success (packed floats)", path: "/llm.v1.LlmService/Embed", headers: grpc, body: envelope(embedRequest("sim/embed", ["one", "two three"])) },
    { name: "gRPC Embed of a chat model, INVALID_ARGUMENT", path: "/llm.v1.LlmService/Embed", headers: grpc, body: envelope(embedRequest("sim/echo", ["one"])) },
    ...[false, true].map((h1): Case => ({
      name: `Connect JSON Embed success${h1 ? " (HTTP/1.1)" : ""}`,
      h1,
      path: "/llm.v1.LlmService/Embed",
      headers: { "content-type": "application/json" },
      body: Buffer.from(JSON.stringify({ model: "embed", inputs: ["connect json"], dimensions: 5 })),
    })),
    { name: "gRPC unary without a key", path: "/llm.v1.LlmService/Generate", headers: grpc, body: envelope(request("sim/echo")), auth: false },
    { name: "gRPC malformed grpc-timeout", path: "/llm.v1.LlmService/Generate", headers: { ...grpc, "grpc-timeout": "soon" }, body: envelope(request("sim/echo")) },
    { name: "gRPC grpc-timeout over the maximum", path: "/llm.v1.LlmService/Generate", headers: { ...grpc, "grpc-timeout": "2M" }, body: envelope(request("sim/echo")) },
    { name: "gRPC undecodable message", path: "/llm.v1.LlmService/Generate", headers: grpc, body: envelope(Buffer.from([0x0a, 0xff, 0x01])) },
    { name: "gRPC empty body", path: "/llm.v1.LlmService/Generate", headers: grpc, body: new Uint8Array(0) },
    { name: "gRPC oversize message", path: "/llm.v1.LlmService/Generate", headers: grpc, body: envelope(request("sim/echo", "x".repeat(8000))) },
    // The limit is on the message, as connect-node has it: the envelope's 5 bytes do not count.
    { name: "gRPC message of exactly MAX_REQUEST_BYTES", path: "/llm.v1.LlmService/Generate", headers: grpc, body: envelope(requestOfSize(4096)) },
    { name: "gRPC message 4 bytes under MAX_REQUEST_BYTES", path: "/llm.v1.LlmService/Generate", headers: grpc, body: envelope(requestOfSize(4092)) },
    { name: "gRPC message 1 byte over MAX_REQUEST_BYTES", path: "/llm.v1.LlmService/Generate", headers: grpc, body: envelope(requestOfSize(4097)) },
    { name: "gRPC declared length over the limit, body cut short", path: "/llm.v1.LlmService/Generate", headers: grpc, body: truncatedEnvelope(5000, 10) },
    { name: "gRPC declared length within the limit, body cut short", path: "/llm.v1.LlmService/Generate", headers: grpc, body: truncatedEnvelope(100, 10) },
    { name: "gRPC compressed flag without grpc-encoding", path: "/llm.v1.LlmService/Generate", headers: grpc, body: envelope(request("sim/echo"), 1) },
    { name: "gRPC server stream success", path: "/llm.v1.LlmService/StreamGenerate", headers: grpc, body: envelope(request("sim/echo", "one two three four")) },
    { name: "gRPC server stream NOT_FOUND", path: "/llm.v1.LlmService/StreamGenerate", headers: grpc, body: envelope(request("no/such-model")) },
    { name: "gRPC ListModels", path: "/llm.v1.LlmService/ListModels", headers: grpc, body: envelope(new Uint8Array(0)) },
    // Response compression, negotiated as connect-node does: messages and bodies of 1 KiB or more.
    { name: "gRPC gzip accepted, small response", path: "/llm.v1.LlmService/Generate", headers: { ...grpc, "grpc-accept-encoding": "gzip" }, body: envelope(request("sim/echo")) },
    { name: "gRPC gzip accepted, large response", path: "/llm.v1.LlmService/Generate", headers: { ...grpc, "grpc-accept-encoding": "gzip" }, body: envelope(request("sim/echo", "g".repeat(2000))) },
    { name: "gRPC br accepted, large response", path: "/llm.v1.LlmService/Generate", headers: { ...grpc, "grpc-accept-encoding": "br" }, body: envelope(request("sim/echo", "b".repeat(2000))) },
    {
      name: "gRPC grpc-js's accept list, large response",
      path: "/llm.v1.LlmService/Generate",
      headers: { ...grpc, "grpc-accept-encoding": "identity,deflate,gzip" },
      body: envelope(request("sim/echo", "j".repeat(2000))),
    },
    { name: "gRPC unknown encodings accepted only", path: "/llm.v1.LlmService/Generate", headers: { ...grpc, "grpc-accept-encoding": "snappy" }, body: envelope(request("sim/echo", "u".repeat(2000))) },
    {
      name: "gRPC server stream, gzip accepted, one large delta",
      path: "/llm.v1.LlmService/StreamGenerate",
      headers: { ...grpc, "grpc-accept-encoding": "gzip" },
      body: envelope(request("sim/echo", `${"s".repeat(1500)} small`)),
    },
    { name: "gRPC error, gzip accepted", path: "/llm.v1.LlmService/Generate", headers: { ...grpc, "grpc-accept-encoding": "gzip" }, body: envelope(request("no/such-model")) },
    ...[false, true].flatMap((h1): Case[] => [
      {
        name: `Connect JSON, a browser's accept-encoding, large response${h1 ? " (HTTP/1.1)" : ""}`,
        h1,
        path: "/llm.v1.LlmService/Generate",
        headers: { "content-type": "application/json", "accept-encoding": "gzip, deflate, br, zstd" },
        body: Buffer.from(JSON.stringify({ model: "sim/echo", messages: [{ role: "ROLE_USER", content: "c".repeat(2000) }] })),
      },
      {
        name: `Connect proto, br accepted, large response${h1 ? " (HTTP/1.1)" : ""}`,
        h1,
        path: "/llm.v1.LlmService/Generate",
        headers: { "content-type": "application/proto", "accept-encoding": "br" },
        body: request("sim/echo", "p".repeat(2000)),
      },
      {
        name: `Connect JSON, gzip accepted, small response${h1 ? " (HTTP/1.1)" : ""}`,
        h1,
        path: "/llm.v1.LlmService/Generate",
        headers: { "content-type": "application/json", "accept-encoding": "gzip" },
        body: Buffer.from(JSON.stringify({ model: "sim/echo", messages: [{ role: "ROLE_USER", content: "small" }] })),
      },
      {
        name: `Connect JSON, gzip accepted, large error body${h1 ? " (HTTP/1.1)" : ""}`,
        h1,
        path: "/llm.v1.LlmService/Generate",
        headers: { "content-type": "application/json", "accept-encoding": "gzip" },
        body: Buffer.from(JSON.stringify({ model: "sim/echo", messages: Array.from({ length: 40 }, () => ({ role: "ROLE_UNSPECIFIED", content: "" })) })),
      },
    ]),
    ...[false, true].flatMap((h1): Case[] => [
      {
        name: `Connect JSON success${h1 ? " (HTTP/1.1)" : ""}`,
        h1,
        path: "/llm.v1.LlmService/Generate",
        headers: { "content-type": "application/json" },
        body: Buffer.from(JSON.stringify({ model: "sim/echo", messages: [{ role: "ROLE_USER", content: "parity" }] })),
      },
      {
        name: `Connect proto success${h1 ? " (HTTP/1.1)" : ""}`,
        h1,
        path: "/llm.v1.LlmService/Generate",
        headers: { "content-type": "application/proto", "connect-protocol-version": "1" },
        body: request("sim/echo"),
      },
      {
        name: `Connect JSON NOT_FOUND${h1 ? " (HTTP/1.1)" : ""}`,
        h1,
        path: "/llm.v1.LlmService/Generate",
        headers: { "content-type": "application/json" },
        body: Buffer.from(JSON.stringify({ model: "nope", messages: [{ role: "ROLE_USER", content: "parity" }] })),
      },
      {
        name: `Connect oversize request${h1 ? " (HTTP/1.1)" : ""}`,
        h1,
        path: "/llm.v1.LlmService/Generate",
        headers: { "content-type": "application/json" },
        body: Buffer.from(JSON.stringify({ model: "sim/echo", messages: [{ role: "ROLE_USER", content: "y".repeat(9000) }] })),
      },
      { name: `Connect invalid JSON${h1 ? " (HTTP/1.1)" : ""}`, h1, path: "/llm.v1.LlmService/Generate", headers: { "content-type": "application/json" }, body: Buffer.from("{not json") },
      {
        name: `Connect malformed connect-timeout-ms${h1 ? " (HTTP/1.1)" : ""}`,
        h1,
        path: "/llm.v1.LlmService/Generate",
        headers: { "content-type": "application/json", "connect-timeout-ms": "-5" },
        body: Buffer.from(JSON.stringify({ model: "sim/echo", messages: [{ role: "ROLE_USER", content: "parity" }] })),
      },
    ]),
    ...[false, true].flatMap((h1): Case[] => {
      const on = h1 ? " (HTTP/1.1)" : "";
      const path = "/llm.v1.LlmService/StreamGenerate";
      const proto = { "content-type": "application/connect+proto" };
      const json = { "content-type": "application/connect+json" };
      const jsonBody = (model: string, content: string) => envelope(Buffer.from(JSON.stringify({ model, messages: [{ role: "ROLE_USER", content }] })));
      return [
        { name: `Connect stream proto success${on}`, h1, path, headers: { ...proto, "connect-protocol-version": "1" }, body: envelope(request("sim/echo", "one two three four")) },
        { name: `Connect stream JSON success${on}`, h1, path, headers: json, body: jsonBody("sim/echo", "one two three four") },
        { name: `Connect stream JSON success, charset${on}`, h1, path, headers: { "content-type": "application/connect+json; charset=utf-8" }, body: jsonBody("sim/echo", "five six") },
        { name: `Connect stream proto NOT_FOUND${on}`, h1, path, headers: proto, body: envelope(request("no/such-model")) },
        { name: `Connect stream JSON NOT_FOUND${on}`, h1, path, headers: json, body: jsonBody("nope", "x") },
        { name: `Connect stream without a key${on}`, h1, path, headers: proto, body: envelope(request("sim/echo")), auth: false },
        { name: `Connect stream malformed connect-timeout-ms${on}`, h1, path, headers: { ...proto, "connect-timeout-ms": "soon" }, body: envelope(request("sim/echo")) },
        { name: `Connect stream connect-timeout-ms over the maximum${on}`, h1, path, headers: { ...json, "connect-timeout-ms": "99999999" }, body: jsonBody("sim/echo", "x") },
        { name: `Connect stream undecodable message${on}`, h1, path, headers: proto, body: envelope(Buffer.from([0x0a, 0xff, 0x01])) },
        { name: `Connect stream invalid JSON${on}`, h1, path, headers: json, body: envelope(Buffer.from("{not json")) },
        { name: `Connect stream empty body${on}`, h1, path, headers: proto, body: new Uint8Array(0) },
        { name: `Connect stream oversize message${on}`, h1, path, headers: proto, body: envelope(request("sim/echo", "x".repeat(8000))) },
        { name: `Connect stream declared length over the limit, body cut short${on}`, h1, path, headers: proto, body: truncatedEnvelope(5000, 10) },
        { name: `Connect stream compressed flag without an encoding${on}`, h1, path, headers: proto, body: envelope(request("sim/echo"), 1) },
        { name: `Connect stream end-of-stream envelope as the request${on}`, h1, path, headers: proto, body: envelope(Buffer.from("{}"), 2) },
        { name: `Connect stream two messages${on}`, h1, path, headers: proto, body: Buffer.concat([envelope(request("sim/echo")), envelope(request("sim/echo"))]) },
        {
          name: `Connect stream, gzip accepted, one large delta${on}`,
          h1,
          path,
          headers: { ...proto, "connect-accept-encoding": "gzip" },
          body: envelope(request("sim/echo", `${"s".repeat(1500)} small`)),
        },
        { name: `Connect stream, br accepted, error${on}`, h1, path, headers: { ...json, "connect-accept-encoding": "br" }, body: jsonBody("nope", "x") },
      ];
    }),
  ];

  it.each(cases)("$name", async (c) => {
    const send = async (server: TestServer) => {
      const headers = { ...c.headers, "x-request-id": "parity-request-1", ...(c.auth === false ? {} : { authorization: `Bearer ${server.key}` }) };
      return c.h1 ? h1Request(server.port, c.path, headers, c.body) : h2Request(server.port, c.path, headers, c.body);
    };
    const before = fast.app.fastPathServed() ?? 0;
    const [a, b] = [await send(fast), await send(slow)];
    expect({ ...a, body: a.body.toString("base64") }).toEqual({ ...b, body: b.body.toString("base64") });
    expect(a.status).toBeGreaterThan(0);
    // The comparison means something only if the fast path answered one side and connect-node the other.
    expect(fast.app.fastPathServed()).toBe(before + 1);
    expect(slow.app.fastPathServed()).toBeUndefined();
  });
});

describe("response compression on the direct path", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ MAX_REQUEST_BYTES: "65536" });
  }, 60_000);
  afterAll(async () => {
    await server?.close();
  });

  it("gzips a gRPC message of 1 KiB or more for a client that accepts gzip, and not a smaller one", async () => {
    const send = (content: string) =>
      h2Request(server.port, "/llm.v1.LlmService/Generate", { "content-type": "application/grpc", te: "trailers", "grpc-accept-encoding": "gzip", authorization: `Bearer ${server.key}` }, envelope(request("sim/echo", content)));
    const before = server.app.fastPathServed() ?? 0;
    const [large, small] = [await send("z".repeat(3000)), await send("tiny")];
    expect(server.app.fastPathServed()).toBe(before + 2);
    expect(large.headers["grpc-encoding"]).toBe("gzip");
    expect(large.body[0]).toBe(1);
    const message = gunzipSync(large.body.subarray(5, 5 + large.body.readUInt32BE(1)));
    expect(fromBinary(GenerateResponseSchema, message).text).toBe("z".repeat(3000));
    expect(large.body.byteLength).toBeLessThan(1000);
    expect(small.headers["grpc-encoding"]).toBe("gzip");
    expect(small.body[0]).toBe(0);
  });

  it("real clients read compressed answers: grpc-js (accepts gzip) and connect-node over gRPC and Connect (gzip, br)", async () => {
    const content = "r".repeat(3000);
    const before = server.app.fastPathServed() ?? 0;
    const js = grpcJsClient(LlmService, server.port);
    try {
      const res = await new Promise<{ text: string }>((resolve, reject) => {
        const call = js["generate"] as (req: unknown, md: unknown, cb: (err: Error | null, res: { text: string }) => void) => void;
        call.call(js, create(GenerateRequestSchema, { model: "sim/echo", messages: [{ role: Role.USER, content }] }), grpcMetadata(server.key), (err, r) => (err ? reject(err) : resolve(r)));
      });
      expect(res.text).toBe(content);
    } finally {
      js.close();
    }
    for (const protocol of ["grpc", "connect-h1"] as const) {
      const res = await llmClient(server.baseUrl, protocol, server.key).generate({ model: "sim/echo", messages: [{ role: Role.USER, content }] });
      expect(res.text).toBe(content);
    }
    expect(server.app.fastPathServed()).toBe(before + 3);
  });

  it("compresses a Connect unary body with the first accepted encoding it has, and an error body too", async () => {
    const send = (body: unknown, acceptEncoding: string) =>
      h1Request(server.port, "/llm.v1.LlmService/Generate", { "content-type": "application/json", "accept-encoding": acceptEncoding, authorization: `Bearer ${server.key}` }, Buffer.from(JSON.stringify(body)));
    const ok = await send({ model: "sim/echo", messages: [{ role: "ROLE_USER", content: "q".repeat(3000) }] }, "zstd, br, gzip");
    expect(ok.headers["content-encoding"]).toBe("br");
    expect(JSON.parse(brotliDecompressSync(ok.body).toString()).text).toBe("q".repeat(3000));
    const messages = Array.from({ length: 40 }, () => ({ role: "ROLE_UNSPECIFIED", content: "" }));
    const bad = await send({ model: "sim/echo", messages }, "gzip");
    expect(bad.status).toBe(400);
    expect(bad.headers["content-encoding"]).toBe("gzip");
    expect(JSON.parse(gunzipSync(bad.body).toString()).code).toBe("invalid_argument");
  });
});

describe("createFastPath: what it takes, deadlines and cancellation", () => {
  const seen: { reason?: unknown; timeoutMs?: number | undefined }[] = [];
  const impl = {
    async generate(_req: unknown, ctx: HandlerContext) {
      seen.push({ timeoutMs: ctx.timeoutMs() });
      await new Promise<void>((resolve) => {
        if (ctx.signal.aborted) resolve();
        ctx.signal.addEventListener("abort", () => resolve(), { once: true });
      });
      seen[seen.length - 1]!.reason = ctx.signal.reason;
      throw ctx.signal.reason;
    },
    streamGenerate(req: { model: string }, ctx: HandlerContext) {
      if (req.model === "endless") return endless(ctx);
      if (req.model === "unserializable") {
        // A message the writer cannot serialize (int64 from a word), then the stream as it goes on.
        const queue = endless(ctx);
        queue.push({ event: { case: "completed" as const, value: { usage: { inputTokens: "many" } } } });
        return queue;
      }
      return (async function* () {
        for (let i = 0; i < 500; i++) yield { event: { case: "delta" as const, value: { text: `token ${i} `.repeat(50) } } };
      })();
    },
  } as unknown as ServiceImpl<typeof LlmService>;
  /** What the last endless stream saw: its consumer returned (the gateway's cue to stop), and the call's signal. */
  const endlessSeen: { returned: boolean; pushed: number; signalReason?: unknown }[] = [];
  /** A pushed stream, as the gateway's: a token every 2 ms (at most 5,000) until its consumer returns. */
  function endless(ctx: HandlerContext) {
    const seen: (typeof endlessSeen)[number] = { returned: false, pushed: 0 };
    endlessSeen.push(seen);
    ctx.signal.addEventListener("abort", () => (seen.signalReason = ctx.signal.reason), { once: true });
    const timer = setInterval(() => {
      if (seen.pushed++ >= 5_000) {
        clearInterval(timer);
        queue.end();
      } else queue.push({ event: { case: "delta" as const, value: { text: "tok " } } });
    }, 2);
    const queue = new PushQueue<unknown>({
      onReturn: () => {
        seen.returned = true;
        clearInterval(timer);
      },
    });
    return queue;
  }
  const fast = createFastPath({ service: LlmService, impl, interceptors: [], readMaxBytes: 1 << 20, maxTimeoutMs: 60_000 });
  let server: http2.Http2Server;
  let port = 0;
  /** The same handler over HTTP/1.1. */
  let h1Server: http.Server;
  let h1Port = 0;

  beforeAll(async () => {
    server = http2.createServer((req, res) => {
      if (fast(req, res)) return;
      res.writeHead(418, { "x-delegated": "1" });
      res.end();
    });
    h1Server = http.createServer((req, res) => {
      if (!fast(req, res)) res.writeHead(418).end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    await new Promise<void>((resolve) => h1Server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
    h1Port = (h1Server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    h1Server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await new Promise<void>((resolve) => h1Server.close(() => resolve()));
  });

  it.each([
    ["gRPC-web", "/llm.v1.LlmService/Generate", { "content-type": "application/grpc-web+proto" }],
    ["gzip-compressed gRPC", "/llm.v1.LlmService/Generate", { "content-type": "application/grpc", "grpc-encoding": "gzip" }],
    ["JSON over gRPC", "/llm.v1.LlmService/Generate", { "content-type": "application/grpc+json" }],
    ["gzip-compressed Connect streaming", "/llm.v1.LlmService/StreamGenerate", { "content-type": "application/connect+proto", "connect-content-encoding": "gzip" }],
    ["Connect streaming to a unary method", "/llm.v1.LlmService/Generate", { "content-type": "application/connect+proto" }],
    ["Connect streaming of another kind of JSON", "/llm.v1.LlmService/StreamGenerate", { "content-type": "application/connect+json; charset=latin1" }],
    ["Connect unary to a streaming method", "/llm.v1.LlmService/StreamGenerate", { "content-type": "application/proto" }],
    ["health", "/grpc.health.v1.Health/Check", { "content-type": "application/grpc" }],
    ["an unknown method", "/llm.v1.LlmService/Nope", { "content-type": "application/grpc" }],
    ["a query string", "/llm.v1.LlmService/Generate?x=1", { "content-type": "application/grpc" }],
  ])("leaves %s to connect-node", async (_name, path, headers) => {
    const res = await h2Request(port, path, headers, envelope(request("sim/echo")));
    expect(res.status).toBe(418);
    expect(res.headers["x-delegated"]).toBe("1");
  });

  it("a grpc-timeout fires the handler's signal with DEADLINE_EXCEEDED, on time", async () => {
    const started = Date.now();
    const res = await h2Request(port, "/llm.v1.LlmService/Generate", { "content-type": "application/grpc", "grpc-timeout": "150m" }, envelope(request("x")));
    const elapsed = Date.now() - started;
    expect(res.trailers["grpc-status"]).toBe(String(Code.DeadlineExceeded));
    expect(elapsed).toBeGreaterThanOrEqual(145);
    expect(elapsed).toBeLessThan(1_000);
    const last = seen.at(-1)!;
    expect(last.timeoutMs).toBeGreaterThan(100);
    expect(last.timeoutMs).toBeLessThanOrEqual(150);
    expect(last.reason).toBeInstanceOf(ConnectError);
    expect((last.reason as ConnectError).code).toBe(Code.DeadlineExceeded);
  });

  it("a client that resets the stream fires the handler's signal with CANCELED", async () => {
    const before = seen.length;
    const session = http2.connect(`http://127.0.0.1:${port}`);
    const stream = session.request({ ":method": "POST", ":path": "/llm.v1.LlmService/Generate", "content-type": "application/grpc" });
    stream.on("error", () => {});
    stream.end(envelope(request("x")));
    await expect.poll(() => seen.length).toBe(before + 1);
    stream.close(http2.constants.NGHTTP2_CANCEL);
    await expect.poll(() => seen.at(-1)?.reason).toBeInstanceOf(ConnectError);
    expect((seen.at(-1)!.reason as ConnectError).code).toBe(Code.Canceled);
    session.close();
  });

  it.each([false, true])("a long Connect server stream arrives whole, in order, then its end-of-stream message (HTTP/1.1: %s)", async (h1) => {
    const res = await (h1 ? h1Request : h2Request)(h1 ? h1Port : port, "/llm.v1.LlmService/StreamGenerate", { "content-type": "application/connect+proto" }, envelope(request("x")));
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toBe("application/connect+proto");
    const all = frames(res.body);
    expect(all).toHaveLength(501);
    expect(all.slice(0, 500).every((f) => f.flags === 0)).toBe(true);
    expect(all[0]!.data.toString()).toContain("token 0 ");
    expect(all[499]!.data.toString()).toContain("token 499 ");
    expect(all[500]).toEqual({ flags: 2, data: Buffer.from("{}") });
  });

  it.each([
    ["Connect", "application/connect+json", envelope(Buffer.from(JSON.stringify({ model: "endless" })))],
    ["gRPC", "application/grpc", envelope(request("endless"))],
  ])("a %s client that resets its HTTP/2 stream mid-stream cancels the call: the stream's consumer returns and the signal fires", async (_name, contentType, body) => {
    const before = endlessSeen.length;
    const session = http2.connect(`http://127.0.0.1:${port}`);
    const stream = session.request({ ":method": "POST", ":path": "/llm.v1.LlmService/StreamGenerate", "content-type": contentType });
    stream.on("error", () => {});
    stream.once("data", () => stream.close(http2.constants.NGHTTP2_CANCEL));
    stream.end(body);
    await expect.poll(() => endlessSeen[before]?.returned, { timeout: 5_000 }).toBe(true);
    expect((endlessSeen[before]!.signalReason as ConnectError).code).toBe(Code.Canceled);
    expect(endlessSeen[before]!.pushed).toBeLessThan(5_000);
    session.close();
  });

  it.each([
    ["Connect", "application/connect+proto"],
    ["gRPC", "application/grpc"],
  ])("a %s stream whose message does not serialize ends with INTERNAL and stops the handler's stream", async (name, contentType) => {
    const before = endlessSeen.length;
    const res = await h2Request(port, "/llm.v1.LlmService/StreamGenerate", { "content-type": contentType }, envelope(request("unserializable")));
    const code = name === "gRPC" ? res.trailers["grpc-status"] : (JSON.parse(frames(res.body).at(-1)!.data.toString()) as { error: { code: string } }).error.code;
    expect(code).toBe(name === "gRPC" ? String(Code.Internal) : "internal");
    await expect.poll(() => endlessSeen[before]?.returned, { timeout: 5_000 }).toBe(true);
  });

  it("a Connect client that closes its HTTP/1.1 connection mid-stream cancels the call", async () => {
    const before = endlessSeen.length;
    const req = http.request({ host: "127.0.0.1", port: h1Port, method: "POST", path: "/llm.v1.LlmService/StreamGenerate", headers: { "content-type": "application/connect+proto" } });
    req.on("error", () => {});
    req.on("response", (res) => res.once("data", () => req.destroy()));
    req.end(envelope(request("endless")));
    await expect.poll(() => endlessSeen[before]?.returned, { timeout: 5_000 }).toBe(true);
    expect((endlessSeen[before]!.signalReason as ConnectError).code).toBe(Code.Canceled);
    expect(endlessSeen[before]!.pushed).toBeLessThan(5_000);
  });

  it("a long server stream arrives whole, in order, with status 0", async () => {
    const res = await h2Request(port, "/llm.v1.LlmService/StreamGenerate", { "content-type": "application/grpc" }, envelope(request("x")));
    expect(res.trailers["grpc-status"]).toBe("0");
    let count = 0;
    for (let at = 0; at < res.body.byteLength; count++) at += 5 + res.body.readUInt32BE(at + 1);
    expect(count).toBe(500);
    expect(res.body.subarray(5, 5 + res.body.readUInt32BE(1)).toString()).toContain("token 0 ");
  });
});
