/** Writing a call's error: gRPC status trailers, a Connect end-of-stream message, or a Connect unary error body. */
import type { ConnectError } from "@connectrpc/connect";
import type { Compression } from "../response-compression.js";
import { codeToHttpStatus, errorJsonBytes } from "../wire/connect-errors.js";
import { mergeNonProtocolHeaders } from "../wire/connect-internals.js";
import { setGrpcStatus } from "../wire/grpc-status.js";
import { writeConnectEndStream } from "./connect-stream-writer.js";
import { nodeHeaders, responseClosed, type NodeResponse } from "./node-http.js";
import type { Protocol } from "./protocol.js";
import { writeConnectUnary } from "./unary-writers.js";

export async function writeError(res: NodeResponse, protocol: Protocol, error: ConnectError, header: Headers, trailer: Headers, compression: Compression | null): Promise<void> {
  if (responseClosed(res)) return;
  if (protocol.name === "grpc") {
    if (!res.headersSent) res.writeHead(200, nodeHeaders(header));
    setGrpcStatus(trailer, error);
    res.addTrailers(nodeHeaders(trailer));
    res.end();
    return;
  }
  if (protocol.enveloped) return writeConnectEndStream(res, header, trailer, error, compression);
  header.set("content-type", "application/json");
  if (!error.isWireError) mergeNonProtocolHeaders(header, error.metadata);
  await writeConnectUnary(res, codeToHttpStatus(error.code), header, trailer, errorJsonBytes(error), compression);
}
