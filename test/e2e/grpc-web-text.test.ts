/**
 * gRPC-web text mode (application/grpc-web-text), as Google's grpc-web JavaScript client sends it by
 * default: base64 bodies both ways. A raw HTTP/1.1 client builds the base64 body by hand, in chunks
 * padded each on its own, and decodes the answer, for a unary call, a server stream and an error.
 */
import http from "node:http";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GenerateRequestSchema, GenerateResponseSchema, Role, StreamGenerateResponseSchema } from "../../gen/ts/llm/v1/llm_service_pb.js";
import { envelope, frames, grpcError, grpcWebTrailers } from "../helpers/raw-http.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
}, 60_000);
afterAll(async () => {
  await server?.close();
});

interface TextResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

/** A POST whose body goes out in the given pieces (chunked transfer encoding, one write each). */
function post(path: string, headers: Record<string, string>, pieces: string[]): Promise<TextResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port: server.port, method: "POST", path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString("latin1") }));
    });
    req.on("error", reject);
    for (const piece of pieces) req.write(piece);
    req.end();
  });
}

/** base64 that may be padded anywhere a sender's chunk ended: each padded run decoded on its own. */
function decodeText(text: string): Buffer {
  const runs = text.match(/[A-Za-z0-9+/]+={0,2}/g) ?? [];
  return Buffer.concat(runs.map((run) => Buffer.from(run, "base64")));
}

const headers = () => ({
  "content-type": "application/grpc-web-text",
  accept: "application/grpc-web-text",
  "x-grpc-web": "1",
  authorization: `Bearer ${server.key}`,
});
const body = (model: string, content: string) =>
  envelope(toBinary(GenerateRequestSchema, create(GenerateRequestSchema, { model, messages: [{ role: Role.USER, content }] })));

/** The framed body as base64 in two pieces, each encoded on its own: the first 4 bytes end in padding. */
function paddedPieces(framed: Buffer): string[] {
  return [framed.subarray(0, 4).toString("base64"), framed.subarray(4).toString("base64")];
}

describe("gRPC-web text mode", () => {
  it("serves a unary call whose base64 body comes in two separately padded chunks", async () => {
    const pieces = paddedPieces(body("sim/echo", "text mode works"));
    expect(pieces[0]).toMatch(/=$/);
    const res = await post("/llm.v1.LlmService/Generate", headers(), pieces);
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toBe("application/grpc-web-text+proto");
    const decoded = decodeText(res.text);
    const messages = frames(decoded).filter((f) => (f.flags & 0x80) === 0);
    expect(messages).toHaveLength(1);
    expect(fromBinary(GenerateResponseSchema, messages[0]!.data).text).toBe("text mode works");
    expect(grpcWebTrailers(decoded)["grpc-status"]).toBe("0");
  });

  it("serves a server stream: every event, then the trailer frame, all base64", async () => {
    const res = await post("/llm.v1.LlmService/StreamGenerate", headers(), [body("sim/echo", "one two three four").toString("base64")]);
    expect(res.status).toBe(200);
    expect(res.text).toMatch(/^[A-Za-z0-9+/=]+$/);
    const decoded = decodeText(res.text);
    const events = frames(decoded)
      .filter((f) => (f.flags & 0x80) === 0)
      .map((f) => fromBinary(StreamGenerateResponseSchema, f.data).event);
    expect(events[0]?.case).toBe("started");
    expect(events.at(-1)?.case).toBe("completed");
    const text = events.flatMap((e) => (e.case === "delta" ? [e.value.text] : [])).join("");
    expect(text).toBe("one two three four");
    expect(grpcWebTrailers(decoded)["grpc-status"]).toBe("0");
  });

  it("an error comes in the base64 trailer frame, with its details", async () => {
    const res = await post("/llm.v1.LlmService/Generate", headers(), [body("no/such-model", "x").toString("base64")]);
    const error = grpcError(grpcWebTrailers(decodeText(res.text)));
    expect(error.code).toBe(String(Code.NotFound));
    expect(error.info?.reason).toBe("MODEL_NOT_FOUND");
  });

  it("a body that is not base64 is INVALID_ARGUMENT, MALFORMED_REQUEST", async () => {
    const res = await post("/llm.v1.LlmService/Generate", headers(), ["not*base64!"]);
    const error = grpcError(grpcWebTrailers(decodeText(res.text)));
    expect(error.code).toBe(String(Code.InvalidArgument));
    expect(error.info?.reason).toBe("MALFORMED_REQUEST");
  });
});
