/**
 * Errors the RPC protocol layer raises before any interceptor or handler runs — malformed JSON or
 * protobuf, a bad deadline header, an oversize message, a content type nobody speaks — carry ErrorInfo
 * (with request_id) and x-request-id like every other error, on the direct path and on connect-node.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/ts/google/rpc/error_details_pb.js";
import { GenerateRequestSchema, Role } from "../../gen/ts/llm/v1/llm_service_pb.js";
import { llmClient, type ProtocolName } from "../helpers/clients.js";
import { connectError, envelope, grpcError, grpcWebTrailers, h1Request, h2Request, type RawResponse, type WireError } from "../helpers/raw-http.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const MAX_REQUEST_BYTES = 4096;
const GENERATE = "/llm.v1.LlmService/Generate";
const ID = "protocol-error-1";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const request = (content = "hi") =>
  toBinary(GenerateRequestSchema, create(GenerateRequestSchema, { model: "sim/echo", messages: [{ role: Role.USER, content }] }));
const json = (content = "hi") => Buffer.from(JSON.stringify({ model: "sim/echo", messages: [{ role: "ROLE_USER", content }] }));

describe.each([
  ["the direct path", "true"],
  ["connect-node", "false"],
])("protocol errors on %s", (_name, fastPath) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ MAX_REQUEST_BYTES: String(MAX_REQUEST_BYTES), MAX_DEADLINE_MS: "60000", RPC_FAST_PATH: fastPath });
  }, 60_000);
  afterAll(async () => {
    await server?.close();
  });

  const auth = () => ({ authorization: `Bearer ${server.key}`, "x-request-id": ID });
  const connect = (headers: Record<string, string>, body: Uint8Array) => h1Request(server.port, GENERATE, { "content-type": "application/json", ...auth(), ...headers }, body);
  const grpc = (headers: Record<string, string>, body: Uint8Array) =>
    h2Request(server.port, GENERATE, { "content-type": "application/grpc", te: "trailers", ...auth(), ...headers }, body);

  function expectDescribed(error: WireError, reason: string, requestId?: string): void {
    expect(error.info?.reason).toBe(reason);
    expect(error.info?.domain).toBe("llm-service");
    // The call's id is the server's own, never the caller's x-request-id.
    expect(error.info?.metadata["request_id"]).toMatch(UUID);
    if (requestId !== undefined) expect(error.info?.metadata["request_id"]).toBe(requestId);
  }

  /** x-request-id carries the server's id (the one in ErrorInfo); the caller's id comes back as x-client-request-id. */
  function expectIds(headers: Record<string, string | string[] | undefined>, error: WireError): void {
    expect(headers["x-request-id"]).toMatch(UUID);
    expect(headers["x-request-id"]).toBe(error.info?.metadata["request_id"]);
    expect(headers["x-client-request-id"]).toBe(ID);
  }

  it("malformed JSON: invalid_argument, MALFORMED_REQUEST, x-request-id", async () => {
    const res = await connect({}, Buffer.from("{not json"));
    expect(res.status).toBe(400);
    const error = connectError(res.body);
    expect(error.code).toBe("invalid_argument");
    expectDescribed(error, "MALFORMED_REQUEST");
    expectIds(res.headers, error);
  });

  it("a malformed connect-timeout-ms: INVALID_REQUEST with a BadRequest naming the header", async () => {
    const res = await connect({ "connect-timeout-ms": "-5" }, json());
    const error = connectError(res.body);
    expect(error.code).toBe("invalid_argument");
    expectDescribed(error, "INVALID_REQUEST");
    expect(error.badRequest?.fieldViolations[0]?.field).toBe("connect-timeout-ms");
    expectIds(res.headers, error);
  });

  it("an oversize Connect body: resource_exhausted, REQUEST_TOO_LARGE with the limit", async () => {
    const res = await connect({}, json("y".repeat(MAX_REQUEST_BYTES)));
    const error = connectError(res.body);
    expect(error.code).toBe("resource_exhausted");
    expectDescribed(error, "REQUEST_TOO_LARGE");
    expect(error.info?.metadata["limit_bytes"]).toBe(String(MAX_REQUEST_BYTES));
    expectIds(res.headers, error);
  });

  it("a wrong content type: still 415, now with a Connect error body, UNSUPPORTED_PROTOCOL and x-request-id", async () => {
    const res = await connect({ "content-type": "text/plain" }, json());
    expect(res.status).toBe(415);
    expect(res.headers["accept-post"]).toContain("application/json");
    const error = connectError(res.body);
    expect(error.code).toBe("unimplemented");
    expectDescribed(error, "UNSUPPORTED_PROTOCOL");
    expectIds(res.headers, error);
  });

  it("a wrong content type without an x-request-id gets a fresh id, the same in the header and ErrorInfo", async () => {
    const res = await h1Request(server.port, GENERATE, { "content-type": "text/plain", authorization: `Bearer ${server.key}` }, json());
    const id = res.headers["x-request-id"];
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expectDescribed(connectError(res.body), "UNSUPPORTED_PROTOCOL", id);
  });

  it("gRPC, an undecodable message: INVALID_ARGUMENT, MALFORMED_REQUEST, x-request-id trailer", async () => {
    const res = await grpc({}, envelope(Buffer.from([0x0a, 0xff, 0x01])));
    const error = grpcError(res.trailers);
    expect(error.code).toBe(String(Code.InvalidArgument));
    expectDescribed(error, "MALFORMED_REQUEST");
    expectIds(res.trailers, error);
  });

  it("gRPC, a compressed flag without grpc-encoding: INVALID_ARGUMENT (bad input, not INTERNAL), MALFORMED_REQUEST", async () => {
    const res = await grpc({}, envelope(request(), 1));
    const error = grpcError(res.trailers);
    expect(error.code).toBe(String(Code.InvalidArgument));
    expectDescribed(error, "MALFORMED_REQUEST");
  });

  it("Connect proto, an undecodable message: invalid_argument, MALFORMED_REQUEST", async () => {
    const res = await connect({ "content-type": "application/proto" }, Buffer.from([0x0a, 0xff, 0x01]));
    const error = connectError(res.body);
    expect(error.code).toBe("invalid_argument");
    expectDescribed(error, "MALFORMED_REQUEST");
  });

  it("gRPC, a malformed grpc-timeout: INVALID_REQUEST with a BadRequest naming the header", async () => {
    const res = await grpc({ "grpc-timeout": "soon" }, envelope(request()));
    const error = grpcError(res.trailers);
    expect(error.code).toBe(String(Code.InvalidArgument));
    expectDescribed(error, "INVALID_REQUEST");
    expect(error.badRequest?.fieldViolations[0]?.field).toBe("grpc-timeout");
    expectIds(res.trailers, error);
  });

  it("gRPC, an oversize message: RESOURCE_EXHAUSTED, REQUEST_TOO_LARGE", async () => {
    const res = await grpc({}, envelope(request("z".repeat(MAX_REQUEST_BYTES))));
    const error = grpcError(res.trailers);
    expect(error.code).toBe(String(Code.ResourceExhausted));
    expectDescribed(error, "REQUEST_TOO_LARGE");
    expectIds(res.trailers, error);
  });

  it("the limit is on the message: one of exactly MAX_REQUEST_BYTES is served, one byte more is REQUEST_TOO_LARGE", async () => {
    const ofSize = (bytes: number) => {
      for (let n = bytes; n > 0; n--) if (request("s".repeat(n)).byteLength === bytes) return request("s".repeat(n));
      throw new Error(`no request of ${bytes} bytes`);
    };
    expect((await grpc({}, envelope(ofSize(MAX_REQUEST_BYTES)))).trailers["grpc-status"]).toBe("0");
    expect((await grpc({}, envelope(ofSize(MAX_REQUEST_BYTES - 4)))).trailers["grpc-status"]).toBe("0");
    const over = grpcError((await grpc({}, envelope(ofSize(MAX_REQUEST_BYTES + 1)))).trailers);
    expect(over.code).toBe(String(Code.ResourceExhausted));
    expectDescribed(over, "REQUEST_TOO_LARGE");
  });

  it("a declared message length over the limit is RESOURCE_EXHAUSTED even when the body is cut short", async () => {
    const head = Buffer.alloc(5 + 10, 0x20);
    head[0] = 0;
    head.writeUInt32BE(MAX_REQUEST_BYTES + 1, 1);
    const error = grpcError((await grpc({}, head)).trailers);
    expect(error.code).toBe(String(Code.ResourceExhausted));
    expectDescribed(error, "REQUEST_TOO_LARGE");
  });

  it("an unsupported grpc-encoding: UNIMPLEMENTED with grpc-accept-encoding listing what the server takes", async () => {
    const res = await grpc({ "grpc-encoding": "snappy" }, envelope(request(), 1));
    const error = grpcError(res.trailers);
    expect(error.code).toBe(String(Code.Unimplemented));
    expectDescribed(error, "UNSUPPORTED_PROTOCOL");
    expect(res.headers["grpc-accept-encoding"]).toBe("gzip,br");
  });

  it("an unsupported Connect content-encoding: unimplemented with accept-encoding listing what the server takes", async () => {
    const res = await connect({ "content-encoding": "snappy" }, json());
    expect(connectError(res.body).code).toBe("unimplemented");
    expect(res.headers["accept-encoding"]).toBe("gzip,br");
  });

  it("a gRPC content type nobody speaks: 415 with the status and its details in the headers", async () => {
    const res = await grpc({ "content-type": "application/grpc+thrift" }, envelope(request()));
    expect(res.status).toBe(415);
    const error = grpcError(res.headers);
    expect(error.code).toBe(String(Code.Unimplemented));
    expectDescribed(error, "UNSUPPORTED_PROTOCOL");
    expectIds(res.headers, error);
  });

  it("gRPC-web, an undecodable message: the trailer frame carries the details and x-request-id", async () => {
    const res = await h1Request(server.port, GENERATE, { "content-type": "application/grpc-web+proto", ...auth() }, envelope(Buffer.from([0x0a, 0xff, 0x01])));
    const trailers = grpcWebTrailers(res.body);
    const error = grpcError(trailers);
    expect(error.code).toBe(String(Code.InvalidArgument));
    expectDescribed(error, "MALFORMED_REQUEST");
    expectIds(trailers, error);
  });

  it.each(["connect-h1", "grpc", "grpc-web"] as ProtocolName[])("a %s client tells an oversize message from a rate limit by its reason", async (protocol) => {
    const client = llmClient(server.baseUrl, protocol, server.key);
    const err = await client.generate({ model: "sim/echo", messages: [{ role: Role.USER, content: "w".repeat(MAX_REQUEST_BYTES) }] }).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(err?.code).toBe(Code.ResourceExhausted);
    expect(err?.findDetails(ErrorInfoSchema)[0]?.reason).toBe("REQUEST_TOO_LARGE");
  });

  it("an ordinary call still succeeds (the described errors took nothing else with them)", async () => {
    const res: RawResponse = await grpc({}, envelope(request("fine")));
    expect(res.trailers["grpc-status"]).toBe("0");
  });
});
