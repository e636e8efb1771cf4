/** Writing a server stream as gRPC: enveloped messages, then the status in the trailers. */
import type { DescMessage } from "@bufbuild/protobuf";
import type { StreamResponse } from "@connectrpc/connect";
import type { Compression } from "../response-compression.js";
import { setGrpcStatus } from "../wire/grpc-status.js";
import type { MessageCodec } from "../wire/message-codec.js";
import { copyHeaders, nodeHeaders, responseClosed, type NodeResponse } from "./node-http.js";
import { writeMessages } from "./stream-writer.js";

/** Streams the handler's messages as gRPC envelopes, honouring backpressure; the status goes in the trailers. */
export async function writeGrpcStream(
  res: NodeResponse,
  response: StreamResponse,
  output: DescMessage,
  codec: MessageCodec<unknown>,
  header: Headers,
  trailer: Headers,
  compression: Compression | null,
): Promise<void> {
  const end = await writeMessages(res, response.message as AsyncIterable<unknown>, output, codec, header, compression);
  if (end === undefined || responseClosed(res)) return;
  if (end.failure === undefined) copyHeaders(response.trailer, trailer);
  if (!end.headersSent) res.writeHead(200, nodeHeaders(header));
  setGrpcStatus(trailer, end.failure);
  res.addTrailers(nodeHeaders(trailer));
  res.end();
}
