/**
 * A call's deadline runs from the moment its headers arrive, over real sockets, on both serving
 * paths (the direct path and connect-node): a client that sends headers and then stalls the
 * body, or sends it all but never half-closes, gets DEADLINE_EXCEEDED in its protocol's own form
 * at the deadline, and its stream (HTTP/1.1: its connection) is closed.
 */
import http2 from "node:http2";
import net from "node:net";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import { ErrorInfoSchema } from "../../gen/ts/google/rpc/error_details_pb.js";
import { StatusSchema } from "../../gen/ts/google/rpc/status_pb.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GenerateRequestSchema, Role } from "../../gen/ts/llm/v1/llm_service_pb.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/** Deadline given when the client sends none: short, so the no-header case is quick. */
const DEFAULT_DEADLINE_MS = 1500;

const servers: Record<"direct path" | "connect-node", TestServer | undefined> = { "direct path": undefined, "connect-node": undefined };
beforeAll(async () => {
  const env = { DEFAULT_DEADLINE_MS: String(DEFAULT_DEADLINE_MS) };
  [servers["direct path"], servers["connect-node"]] = await Promise.all([
    startTestServer({ ...env, RPC_FAST_PATH: "true" }),
    startTestServer({ ...env, RPC_FAST_PATH: "false" }),
  ]);
}, 90_000);
afterAll(async () => {
  await Promise.all(Object.values(servers).map((s) => s?.close()));
});

const message = toBinary(GenerateRequestSchema, create(GenerateRequestSchema, { model: "sim/echo", messages: [{ role: Role.USER, content: "hello" }] }));

function envelope(data: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + data.length);
  out.writeUInt32BE(data.length, 1);
  out.set(data, 5);
  return out;
}

interface H2Outcome {
  status: number;
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  body: string;
  /** When the response ended, from when the request's headers were sent. */
  ms: number;
  /** The stream was closed (its "close" event) once the response ended. */
  closed: Promise<void>;
}

/** Sends headers and `body` on an HTTP/2 stream, never ending the request, and reads the response to its end. */
function stalledH2(server: TestServer, headers: http2.OutgoingHttpHeaders, body: Buffer): Promise<H2Outcome> {
  const session = http2.connect(server.baseUrl);
  session.on("error", () => undefined);
  const started = Date.now();
  const stream = session.request({ ":method": "POST", ...headers }, { endStream: false });
  stream.write(body);
  const closed = new Promise<void>((resolve) => stream.once("close", () => resolve()));
  void closed.then(() => session.close());
  return new Promise((resolve, reject) => {
    let status = 0;
    let responseHeaders: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    let text = "";
    stream.on("response", (h) => {
      status = Number(h[":status"]);
      responseHeaders = h;
    });
    stream.on("trailers", (t) => (trailers = t));
    stream.on("data", (chunk: Buffer) => (text += chunk.toString("latin1")));
    stream.on("end", () => resolve({ status, headers: responseHeaders, trailers, body: text, ms: Date.now() - started, closed }));
    stream.on("error", reject);
    // Bounded: a server that never answers fails the test here, not at the test timeout.
    setTimeout(() => reject(new Error("no response within 10 s")), 10_000).unref();
  });
}

/** The grpc-status of a gRPC response: in the trailers, or in the headers of a trailers-only response. */
function grpcStatus(outcome: H2Outcome): string | undefined {
  return (outcome.trailers["grpc-status"] ?? outcome.headers["grpc-status"]) as string | undefined;
}

/** Sends an HTTP/1.1 request whose body stops after `sent` of its bytes, and reads until the server closes the connection. */
async function stalledH1(
  server: TestServer,
  path: string,
  contentType: string,
  headers: Record<string, string>,
  body: Buffer,
  sent: number,
): Promise<{ received: string; ms: number }> {
  const socket = net.connect(server.port, "127.0.0.1");
  socket.on("error", () => undefined);
  const started = Date.now();
  const head = Object.entries({ host: "x", "content-type": contentType, authorization: `Bearer ${server.key}`, "content-length": String(body.length), ...headers })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join("");
  socket.write(`POST ${path} HTTP/1.1\r\n${head}\r\n`);
  socket.write(body.subarray(0, sent));
  const received = await new Promise<string>((resolve, reject) => {
    let text = "";
    socket.on("data", (chunk: Buffer) => (text += chunk.toString("latin1")));
    socket.once("close", () => resolve(text));
    setTimeout(() => reject(new Error(`the connection stayed open 10 s; received ${JSON.stringify(text)}`)), 10_000).unref();
  });
  return { received, ms: Date.now() - started };
}

/** The ErrorInfo reason in a gRPC error's grpc-status-details-bin. */
function grpcErrorReason(outcome: H2Outcome): string | undefined {
  const bin = (outcome.trailers["grpc-status-details-bin"] ?? outcome.headers["grpc-status-details-bin"]) as string | undefined;
  if (bin === undefined) return undefined;
  const status = fromBinary(StatusSchema, Buffer.from(bin, "base64"));
  for (const detail of status.details) {
    const info = anyUnpack(detail, ErrorInfoSchema);
    if (info) return info.reason;
  }
  return undefined;
}

function grpcHeaders(server: TestServer, timeout?: string): http2.OutgoingHttpHeaders {
  return {
    ":path": "/llm.v1.LlmService/Generate",
    "content-type": "application/grpc",
    te: "trailers",
    authorization: `Bearer ${server.key}`,
    ...(timeout !== undefined ? { "grpc-timeout": timeout } : {}),
  };
}

describe.each(["direct path", "connect-node"] as const)("deadline from the headers (%s)", (path) => {
  const server = () => servers[path] as TestServer;

  it("gRPC: headers then a stalled body get grpc-status 4 at the grpc-timeout, and the stream is closed", async () => {
    const whole = envelope(message);
    const outcome = await stalledH2(server(), grpcHeaders(server(), "400m"), whole.subarray(0, 8));
    expect(grpcStatus(outcome)).toBe("4");
    expect(grpcErrorReason(outcome)).toBe("PROVIDER_TIMEOUT"); // the taxonomy's "deadline spent"
    expect(outcome.ms).toBeGreaterThanOrEqual(350);
    expect(outcome.ms).toBeLessThan(3000);
    await outcome.closed;
  });

  it("gRPC: a whole message without END_STREAM gets grpc-status 4 at the grpc-timeout, and the stream is closed", async () => {
    const outcome = await stalledH2(server(), grpcHeaders(server(), "400m"), envelope(message));
    expect(grpcStatus(outcome)).toBe("4");
    expect(outcome.ms).toBeLessThan(3000);
    await outcome.closed;
  });

  it("gRPC: with no grpc-timeout a stalled body is cut off at DEFAULT_DEADLINE_MS", async () => {
    const outcome = await stalledH2(server(), grpcHeaders(server()), envelope(message).subarray(0, 3));
    expect(grpcStatus(outcome)).toBe("4");
    expect(outcome.ms).toBeGreaterThanOrEqual(DEFAULT_DEADLINE_MS - 100);
    await outcome.closed;
  });

  it("Connect over HTTP/2: a body without END_STREAM gets a deadline_exceeded error at connect-timeout-ms, and the stream is closed", async () => {
    const json = Buffer.from(JSON.stringify({ model: "sim/echo", messages: [{ role: "ROLE_USER", content: "hello" }] }));
    const outcome = await stalledH2(
      server(),
      {
        ":path": "/llm.v1.LlmService/Generate",
        "content-type": "application/json",
        "connect-protocol-version": "1",
        "connect-timeout-ms": "400",
        authorization: `Bearer ${server().key}`,
      },
      json,
    );
    expect(outcome.status).toBe(504);
    expect(JSON.parse(outcome.body)).toMatchObject({ code: "deadline_exceeded" });
    await outcome.closed;
  });

  it("Connect over HTTP/1.1: a body cut short gets a deadline_exceeded error at connect-timeout-ms, and the connection is closed", async () => {
    const json = JSON.stringify({ model: "sim/echo", messages: [{ role: "ROLE_USER", content: "hello" }] });
    const { received, ms } = await stalledH1(server(), "/llm.v1.LlmService/Generate", "application/json", { "connect-protocol-version": "1", "connect-timeout-ms": "400" }, Buffer.from(json), 10);
    expect(received).toMatch(/^HTTP\/1\.1 504 /);
    const error = JSON.parse(received.slice(received.indexOf("\r\n\r\n") + 4)) as { code: string; details?: { type: string }[] };
    expect(error.code).toBe("deadline_exceeded");
    expect(error.details?.map((d) => d.type)).toContain("google.rpc.ErrorInfo");
    expect(ms).toBeLessThan(3000);
  });

  it("gRPC-web over HTTP/1.1: a body cut short gets grpc-status 4 at the grpc-timeout, and the connection is closed", async () => {
    const { received } = await stalledH1(server(), "/llm.v1.LlmService/Generate", "application/grpc-web+proto", { "grpc-timeout": "400m", "x-grpc-web": "1" }, envelope(message), 8);
    expect(received).toMatch(/^HTTP\/1\.1 200 /);
    expect(received).toMatch(/\r\ngrpc-status: 4\r\n/i);
  });

  it("Connect streaming over HTTP/1.1: a body cut short ends with a deadline_exceeded end-of-stream message", async () => {
    const json = Buffer.from(JSON.stringify({ model: "sim/echo", messages: [{ role: "ROLE_USER", content: "hello" }] }));
    const { received } = await stalledH1(server(), "/llm.v1.LlmService/StreamGenerate", "application/connect+json", { "connect-protocol-version": "1", "connect-timeout-ms": "400" }, envelope(json), 8);
    expect(received).toMatch(/^HTTP\/1\.1 200 /);
    expect(received).toContain('{"error":{"code":"deadline_exceeded"');
  });

  it("still serves a call whose body arrives in time", async () => {
    const session = http2.connect(server().baseUrl);
    try {
      const stream = session.request({ ":method": "POST", ...grpcHeaders(server(), "5S") });
      stream.end(envelope(message));
      const trailers = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
        stream.on("trailers", resolve);
        stream.on("error", reject);
        stream.resume();
      });
      expect(trailers["grpc-status"]).toBe("0");
    } finally {
      session.close();
    }
  });
});
