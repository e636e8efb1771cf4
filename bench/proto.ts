/**
 * The llm.v1 schemas and gRPC framing for the benchmark. The schemas are loaded from the build
 * output (dist/, which `npm run bench` builds first), typed by the generated sources in gen/ts.
 */
import http2 from "node:http2";
import { fileURLToPath } from "node:url";

type LlmPb = typeof import("../gen/ts/llm/v1/llm_service_pb.js");

const distSchemas = fileURLToPath(new URL("../dist/gen/ts/llm/v1/llm_service_pb.js", import.meta.url));

/** The generated llm.v1 module (GenerateRequestSchema, Role, CacheMode, …). */
export const pb: LlmPb = (await import(distSchemas)) as LlmPb;

/** One gRPC length-prefixed message: flag byte 0 (uncompressed), 4-byte big-endian length, bytes. */
export function grpcFrame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out.writeUInt8(0, 0);
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

/** Splits complete gRPC messages off the front of `buf`; returns them and the unconsumed rest. */
export function takeGrpcFrames(buf: Buffer): { messages: Buffer[]; rest: Buffer } {
  const messages: Buffer[] = [];
  let off = 0;
  while (buf.length - off >= 5) {
    const len = buf.readUInt32BE(off + 1);
    if (buf.length - off - 5 < len) break;
    messages.push(buf.subarray(off + 5, off + 5 + len));
    off += 5 + len;
  }
  return { messages, rest: off === 0 ? buf : buf.subarray(off) };
}

/** One Connect streaming envelope: its flags byte (0x02 = end of stream) and its bytes. */
export interface Envelope {
  flags: number;
  data: Buffer;
}

/** Splits complete Connect envelopes (the gRPC framing, with flags) off the front of `buf`. */
export function takeEnvelopes(buf: Buffer): { envelopes: Envelope[]; rest: Buffer } {
  const envelopes: Envelope[] = [];
  let off = 0;
  while (buf.length - off >= 5) {
    const len = buf.readUInt32BE(off + 1);
    if (buf.length - off - 5 < len) break;
    envelopes.push({ flags: buf.readUInt8(off), data: buf.subarray(off + 5, off + 5 + len) });
    off += 5 + len;
  }
  return { envelopes, rest: off === 0 ? buf : buf.subarray(off) };
}

/** How a bench server answers one Generate call whose request body has been read. */
export interface GenerateCall {
  /** True once the client has gone (h2load hangs up on calls in flight when a timed run ends). */
  gone(): boolean;
  /** Answers with one framed message and grpc-status 0. */
  ok(message: Buffer): void;
  /** Answers with an HTTP error, which h2load (it sees HTTP statuses only) counts; gRPC clients read 503 as UNAVAILABLE. */
  fail(): void;
}

/**
 * A bare node:http2 gRPC server on 127.0.0.1:`port` that reads each /llm.v1.LlmService/Generate
 * request and hands it to `answer` (other paths: UNIMPLEMENTED); exits on SIGTERM.
 */
export function serveGenerate(name: string, port: number, answer: (call: GenerateCall) => void): void {
  const server = http2.createServer();
  server.on("stream", (stream, headers) => {
    stream.on("error", () => {});
    if (headers[":path"] !== "/llm.v1.LlmService/Generate") {
      stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "12" }, { endStream: true });
      return;
    }
    const gone = (): boolean => stream.destroyed || stream.closed;
    stream.resume();
    stream.on("end", () =>
      answer({
        gone,
        ok(message) {
          if (gone()) return;
          stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
          stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
          stream.end(message);
        },
        fail() {
          if (!gone()) stream.respond({ ":status": 503 }, { endStream: true });
        },
      }),
    );
  });
  server.listen(port, "127.0.0.1", () => process.stderr.write(`${name} gRPC server listening on 127.0.0.1:${port}\n`));
  process.on("SIGTERM", () => process.exit(0));
}
