/** Writing a unary answer: a gRPC message with its status trailers, or a Connect unary body. */
import { compressed, type Compression } from "../response-compression.js";
import { trailerMux } from "../wire/connect-errors.js";
import { frame } from "./envelope.js";
import { nodeHeaders, responseClosed, type NodeResponse } from "./node-http.js";

export async function writeGrpcUnary(res: NodeResponse, header: Headers, trailer: Headers, data: Uint8Array, compression: Compression | null): Promise<void> {
  const framed = await frame(data, compression);
  if (responseClosed(res)) return;
  res.writeHead(200, nodeHeaders(header));
  res.write(framed);
  trailer.set("grpc-status", "0");
  res.addTrailers(nodeHeaders(trailer));
  res.end();
}

/** A Connect unary body (a message, or an error's JSON), its trailers as `trailer-` headers. */
export async function writeConnectUnary(res: NodeResponse, status: number, header: Headers, trailer: Headers, body: Uint8Array, compression: Compression | null): Promise<void> {
  // An error body that fails to compress (it cannot, short of running out of memory) goes out as it is.
  const out = await compressed(body, compression).catch(() => ({ data: body, compressed: false }));
  if (responseClosed(res)) return;
  const data = out.data;
  if (out.compressed && compression !== null) header.set("content-encoding", compression.name);
  const headers = nodeHeaders(trailerMux(header, trailer));
  headers["content-length"] = String(data.byteLength);
  res.writeHead(status, headers);
  res.end(data);
}
