/** Which calls the fast path takes, by content type and encoding; anything else is left to connect-node. */
import type { NodeRequest } from "./node-http.js";

/** A call's protocol, from its content type: gRPC binary, or Connect unary binary / JSON. */
export type Protocol = { name: "grpc"; binary: true } | { name: "connect"; binary: boolean };

const GRPC_CONTENT_TYPES = new Set(["application/grpc", "application/grpc+proto"]);

/** The protocol of a call the fast path can serve (HTTP/2 gRPC, uncompressed requests), or undefined. */
export function protocolOf(req: NodeRequest): Protocol | undefined {
  const type = req.headers["content-type"];
  if (type === undefined) return undefined;
  if (GRPC_CONTENT_TYPES.has(type)) {
    const encoding = req.headers["grpc-encoding"];
    return req.httpVersionMajor === 2 && (encoding === undefined || encoding === "identity") ? { name: "grpc", binary: true } : undefined;
  }
  const encoding = req.headers["content-encoding"];
  if (encoding !== undefined && encoding !== "identity") return undefined;
  if (type === "application/proto") return { name: "connect", binary: true };
  if (type === "application/json" || type === "application/json; charset=utf-8") return { name: "connect", binary: false };
  return undefined;
}
