/**
 * gRPC-web text mode (`application/grpc-web-text`), the default of Google's grpc-web JavaScript client:
 * the body is base64 of the binary gRPC-web body, both ways. connect-node answers it with 415, so a
 * text-mode call is turned into a binary one here and its answer back into text:
 * - the request body may come in chunks, each padded on its own, so it is decoded quad by quad, a padded
 *   quad ending a run (whitespace ignored);
 * - each chunk of the response (a message frame, the trailer frame) goes out as base64 of its own, padded,
 *   as the gRPC-web protocol allows, so a streamed message is never held back waiting for the next.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import type { UniversalServerRequest, UniversalServerResponse } from "@connectrpc/connect/protocol";

const TEXT_TYPE = /^application\/grpc-web-text(\+proto)?$/i;
const BINARY_TYPE = "application/grpc-web+proto";
const TEXT_RESPONSE_TYPE = "application/grpc-web-text+proto";
/** Whole quads: four base64 characters, or two or three and their padding. */
const QUADS = /^(?:[A-Za-z0-9+/]{2}(?:[A-Za-z0-9+/]{2}|[A-Za-z0-9+/]=|==))*$/;

export function isGrpcWebText(contentType: string | null): boolean {
  return contentType !== null && TEXT_TYPE.test(contentType);
}

function notBase64(): ConnectError {
  return new ConnectError("protocol error: a grpc-web-text body must be base64", Code.InvalidArgument);
}

/** Decodes whole quads, padding allowed at the end of any quad (where a sender's chunk ended). */
function decodeQuads(text: string): Buffer {
  if (!QUADS.test(text)) throw notBase64();
  const parts: Buffer[] = [];
  let start = 0;
  for (let pad = text.indexOf("="); pad !== -1; pad = text.indexOf("=", start)) {
    const end = (Math.floor(pad / 4) + 1) * 4;
    parts.push(Buffer.from(text.slice(start, end), "base64"));
    start = end;
  }
  if (start < text.length) parts.push(Buffer.from(text.slice(start), "base64"));
  return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
}

/** The binary bytes of a base64 body that arrives in chunks of any size. */
export async function* decodeBase64Body(body: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  let pending = "";
  for await (const chunk of body) {
    const text = pending + Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString("latin1").replace(/\s+/g, "");
    const whole = text.length - (text.length % 4);
    pending = text.slice(whole);
    if (whole > 0) yield decodeQuads(text.slice(0, whole));
  }
  if (pending.length > 0) throw notBase64();
}

/** Each chunk as base64 of its own. */
export async function* encodeBase64Body(body: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  for await (const chunk of body) yield Buffer.from(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString("base64"), "latin1");
}

/** The text-mode request as the binary gRPC-web request connect-node serves. */
export function binaryRequest(req: UniversalServerRequest): UniversalServerRequest {
  const header = new Headers(req.header);
  header.set("content-type", BINARY_TYPE);
  header.delete("content-length");
  const body = req.body as AsyncIterable<Uint8Array>;
  return { ...req, header, body: decodeBase64Body(body) };
}

/** The binary gRPC-web answer as text mode. A response that is not gRPC-web (a 415, a 405) is left alone. */
export function textResponse(res: UniversalServerResponse): UniversalServerResponse {
  if (res.header?.get("content-type")?.startsWith("application/grpc-web") !== true) return res;
  const header = new Headers(res.header);
  header.set("content-type", TEXT_RESPONSE_TYPE);
  header.delete("content-length");
  return { ...res, header, ...(res.body !== undefined ? { body: encodeBase64Body(res.body) } : {}) };
}
