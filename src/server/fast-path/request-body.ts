/** Reading a request body whole, with connect-node's limits and refusals. */
import { Code, ConnectError } from "@connectrpc/connect";
import { ENVELOPE_HEADER_BYTES } from "./envelope.js";
import type { NodeRequest } from "./node-http.js";

/**
 * Reads the whole body, refusing (and no longer buffering) past the limit, which is on the message as in
 * connect-node: an enveloped body may be its 5-byte envelope header larger, and a declared message length
 * over the limit is refused as soon as the header arrives, whether or not the body then comes whole. A
 * Connect unary refusal names the content-length if sent (as connect-node's). `enveloped` is the method
 * kind of an enveloped call (gRPC, Connect streaming), undefined for a Connect unary body.
 */
export function readBody(req: NodeRequest, limit: number, enveloped: string | undefined): Promise<Buffer> {
  const bodyLimit = enveloped === undefined ? limit : limit + ENVELOPE_HEADER_BYTES;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    let declared: number | undefined;
    const fail = (error: ConnectError) => {
      failed = true;
      chunks.length = 0;
      reject(error);
    };
    req.on("data", (chunk: Buffer) => {
      if (failed) return;
      size += chunk.byteLength;
      if (enveloped !== undefined && declared === undefined && size >= ENVELOPE_HEADER_BYTES) {
        declared = (chunks.length > 0 ? Buffer.concat([...chunks, chunk]) : chunk).readUInt32BE(1);
        if (declared > limit) return fail(new ConnectError(`message size ${declared} is larger than configured readMaxBytes ${limit}`, Code.ResourceExhausted));
      }
      if (size > bodyLimit) {
        if (enveloped !== undefined) return fail(new ConnectError(`protocol error: received extra input message for ${enveloped} method`, Code.Unimplemented));
        const length = req.headers["content-length"];
        return fail(new ConnectError(`message size${length !== undefined ? ` ${length}` : ""} is larger than configured readMaxBytes ${limit}`, Code.ResourceExhausted));
      }
      chunks.push(chunk);
    });
    req.once("end", () => {
      if (!failed) resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    });
    req.once("error", (err) => {
      if (!failed) reject(new ConnectError("failed to read the request body", Code.Canceled, undefined, undefined, err));
      failed = true;
    });
  });
}
