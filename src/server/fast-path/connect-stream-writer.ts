/**
 * Writing a server stream as Connect: HTTP 200, enveloped messages, then the end-of-stream message
 * (flag 0x02) whose JSON carries the error, if any, and the trailers. An error before the first
 * message goes the same way, still with status 200.
 */
import type { DescMessage } from "@bufbuild/protobuf";
import type { ConnectError, StreamResponse } from "@connectrpc/connect";
import { COMPRESS_MIN_BYTES, type Compression } from "../response-compression.js";
import { endStreamJsonBytes } from "../wire/connect-errors.js";
import type { MessageCodec } from "../wire/message-codec.js";
import { END_STREAM_FLAG, encodeEnvelope, frame } from "./envelope.js";
import { copyHeaders, nodeHeaders, responseClosed, type NodeResponse } from "./node-http.js";
import { writeMessages } from "./stream-writer.js";

/** Streams the handler's messages as Connect envelopes, honouring backpressure, then the end-of-stream message. */
export async function writeConnectStream(
  res: NodeResponse,
  response: StreamResponse,
  output: DescMessage,
  codec: MessageCodec<unknown>,
  header: Headers,
  trailer: Headers,
  compression: Compression | null,
): Promise<void> {
  const end = await writeMessages(res, response.message as AsyncIterable<unknown>, output, codec, header, compression);
  if (end === undefined) return;
  if (end.failure === undefined) copyHeaders(response.trailer, trailer);
  await writeConnectEndStream(res, header, trailer, end.failure, compression);
}

/** The end-of-stream message (compressed, flag 0x03, when connect-node would), headers first if not yet sent. */
export async function writeConnectEndStream(res: NodeResponse, header: Headers, trailer: Headers, error: ConnectError | undefined, compression: Compression | null): Promise<void> {
  const data = endStreamJsonBytes(trailer, error);
  const framed = compression === null || data.byteLength < COMPRESS_MIN_BYTES ? encodeEnvelope(data, END_STREAM_FLAG) : await frame(data, compression, END_STREAM_FLAG);
  if (responseClosed(res)) return;
  if (!res.headersSent) res.writeHead(200, nodeHeaders(header));
  res.end(framed);
}
