/**
 * The body of a server stream, common to gRPC and Connect: each message the handler yields, serialized
 * and enveloped, written as it comes, holding back while the socket is full. How the stream ends
 * (gRPC trailers, a Connect end-of-stream message) is the caller's.
 */
import type { DescMessage } from "@bufbuild/protobuf";
import type { ConnectError } from "@connectrpc/connect";
import { COMPRESS_MIN_BYTES, type Compression } from "../response-compression.js";
import type { MessageCodec } from "../wire/message-codec.js";
import { encodeEnvelope, frame } from "./envelope.js";
import { asConnectError, normalize } from "./interceptor-chain.js";
import { drained, nodeHeaders, responseClosed, type NodeResponse } from "./node-http.js";

/** How the messages ended: whether the headers went out, and the handler's error if it failed. */
export interface MessagesEnd {
  headersSent: boolean;
  failure?: ConnectError;
}

/**
 * Writes the messages; resolves with how they ended, or undefined when the response closed first (the
 * client went away). Whenever the writer stops before the handler's stream ended (a closed response, a
 * message that does not serialize), the stream is returned, so its producer stops. The headers go out
 * with the first message, so a handler can still set them until then.
 */
export async function writeMessages(
  res: NodeResponse,
  messages: AsyncIterable<unknown>,
  schema: DescMessage,
  codec: MessageCodec<unknown>,
  header: Headers,
  compression: Compression | null,
): Promise<MessagesEnd | undefined> {
  const it = messages[Symbol.asyncIterator]();
  let headersSent = false;
  let pulling = false;
  try {
    for (;;) {
      pulling = true;
      const step = await it.next();
      pulling = false;
      if (step.done === true) return { headersSent };
      const data = codec.serialize(normalize(schema, step.value));
      // Small messages (every token) are framed at once; only one worth compressing waits for the compressor.
      const framed = compression === null || data.byteLength < COMPRESS_MIN_BYTES ? encodeEnvelope(data) : await frame(data, compression);
      if (responseClosed(res)) {
        await it.return?.(undefined);
        return undefined;
      }
      if (!headersSent) {
        res.writeHead(200, nodeHeaders(header));
        headersSent = true;
      }
      if (!res.write(framed)) await drained(res);
    }
  } catch (err) {
    // The stream failed by itself (pulling), or the writer failed with it still open: stop its producer.
    if (!pulling) await it.return?.(undefined).catch(() => undefined);
    return { headersSent, failure: asConnectError(err) };
  }
}
