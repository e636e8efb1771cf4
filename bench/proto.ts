/**
 * The llm.v1 schemas and gRPC framing for the benchmark. The schemas are loaded from the build
 * output (dist/, which `npm run bench` builds first), typed by the generated sources in gen/ts.
 */
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
