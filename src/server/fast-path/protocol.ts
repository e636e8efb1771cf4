/** Which calls the fast path takes, by content type and encoding; anything else is left to connect-node. */
import type { NodeRequest } from "./node-http.js";

/**
 * A call's protocol, from its content type: gRPC binary, or Connect binary / JSON, unary
 * (application/proto, application/json) or streaming (application/connect+proto, application/connect+json).
 * `enveloped`: messages go in envelopes (gRPC, Connect streaming), not as a whole body (Connect unary).
 */
export type Protocol = { name: "grpc"; binary: true; enveloped: true } | { name: "connect"; binary: boolean; enveloped: boolean };

const GRPC_CONTENT_TYPES = new Set(["application/grpc", "application/grpc+proto"]);
const CONNECT_CONTENT_TYPES = new Map<string, Protocol>([
  ["application/proto", { name: "connect", binary: true, enveloped: false }],
  ["application/json", { name: "connect", binary: false, enveloped: false }],
  ["application/json; charset=utf-8", { name: "connect", binary: false, enveloped: false }],
  ["application/connect+proto", { name: "connect", binary: true, enveloped: true }],
  ["application/connect+json", { name: "connect", binary: false, enveloped: true }],
  ["application/connect+json; charset=utf-8", { name: "connect", binary: false, enveloped: true }],
]);
const GRPC: Protocol = { name: "grpc", binary: true, enveloped: true };

const identity = (encoding: string | string[] | undefined) => encoding === undefined || encoding === "identity";

/** The protocol of a call the fast path can serve (HTTP/2 gRPC or Connect, uncompressed requests), or undefined. */
export function protocolOf(req: NodeRequest): Protocol | undefined {
  const type = req.headers["content-type"];
  if (type === undefined) return undefined;
  if (GRPC_CONTENT_TYPES.has(type)) return req.httpVersionMajor === 2 && identity(req.headers["grpc-encoding"]) ? GRPC : undefined;
  const protocol = CONNECT_CONTENT_TYPES.get(type);
  if (protocol === undefined) return undefined;
  return identity(req.headers[protocol.enveloped ? "connect-content-encoding" : "content-encoding"]) ? protocol : undefined;
}

/** The headers a protocol names: its response content type, deadline, and compression negotiation. */
export interface ProtocolHeaders {
  contentType: string;
  timeout: "grpc-timeout" | "connect-timeout-ms";
  /** Where the client lists the encodings it accepts. */
  acceptEncoding: string;
  /** Where an enveloped response announces its compression up front (as connect-node does); a Connect unary body says it on its own. */
  announceEncoding?: string;
}

const GRPC_HEADERS: ProtocolHeaders = { contentType: "application/grpc+proto", timeout: "grpc-timeout", acceptEncoding: "grpc-accept-encoding", announceEncoding: "grpc-encoding" };

export function protocolHeaders(protocol: Protocol): ProtocolHeaders {
  if (protocol.name === "grpc") return GRPC_HEADERS;
  if (protocol.enveloped) {
    return {
      contentType: protocol.binary ? "application/connect+proto" : "application/connect+json",
      timeout: "connect-timeout-ms",
      acceptEncoding: "connect-accept-encoding",
      announceEncoding: "connect-content-encoding",
    };
  }
  return { contentType: protocol.binary ? "application/proto" : "application/json", timeout: "connect-timeout-ms", acceptEncoding: "accept-encoding" };
}
