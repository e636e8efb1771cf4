/** Writing a server stream as gRPC: enveloped messages, then the status in the trailers. */
import type { DescMessage } from "@bufbuild/protobuf";
import type { ConnectError, StreamResponse } from "@connectrpc/connect";
import { COMPRESS_MIN_BYTES, type Compression } from "../response-compression.js";
import { setGrpcStatus } from "../wire/grpc-status.js";
import { encodeEnvelope, frame } from "./envelope.js";
import { asConnectError, normalize } from "./interceptor-chain.js";
import { copyHeaders, drained, nodeHeaders, responseClosed, type NodeResponse } from "./node-http.js";
import type { Route } from "./routes.js";

/** Streams the handler's messages as gRPC envelopes, honouring backpressure; the status goes in the trailers. */
export async function writeGrpcStream(
  res: NodeResponse,
  response: StreamResponse,
  route: Route,
  output: DescMessage,
  header: Headers,
  trailer: Headers,
  compression: Compression | null,
): Promise<void> {
  const serializer = route.codecs.output(true);
  const it = (response.message as AsyncIterable<unknown>)[Symbol.asyncIterator]();
  let headersSent = false;
  let failure: ConnectError | undefined;
  try {
    for (;;) {
      const step = await it.next();
      if (step.done === true) break;
      const data = serializer.serialize(normalize(output, step.value));
      // Small messages (every token) are framed at once; only one worth compressing waits for the compressor.
      const framed = compression === null || data.byteLength < COMPRESS_MIN_BYTES ? encodeEnvelope(data) : await frame(data, compression);
      if (responseClosed(res)) {
        await it.return?.(undefined);
        return;
      }
      if (!headersSent) {
        res.writeHead(200, nodeHeaders(header));
        headersSent = true;
      }
      if (!res.write(framed)) await drained(res);
    }
    copyHeaders(response.trailer, trailer);
  } catch (err) {
    failure = asConnectError(err);
  }
  if (responseClosed(res)) return;
  if (!headersSent) res.writeHead(200, nodeHeaders(header));
  setGrpcStatus(trailer, failure);
  res.addTrailers(nodeHeaders(trailer));
  res.end();
}
