/**
 * The ceiling: a bare node:http2 gRPC server that answers /llm.v1.LlmService/Generate with one
 * fixed GenerateResponse, with no framework, no upstream call and no parsing of the request.
 * Usage: node bench/echo-server.ts PORT
 */
import http2 from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { grpcFrame, pb } from "./proto.ts";

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  process.stderr.write("usage: node bench/echo-server.ts PORT\n");
  process.exit(2);
}

const reply = grpcFrame(
  toBinary(
    pb.GenerateResponseSchema,
    create(pb.GenerateResponseSchema, {
      id: "00000000-0000-4000-8000-000000000000",
      model: "bench/echo",
      provider: "echo",
      text: "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et",
      finishReason: pb.FinishReason.STOP,
      usage: { inputTokens: 12n, outputTokens: 16n, totalTokens: 28n },
      costUsdNanos: 30000n,
      attempts: 1,
    }),
  ),
);

const server = http2.createServer();
server.on("stream", (stream, headers) => {
  stream.on("error", () => {});
  if (headers[":path"] !== "/llm.v1.LlmService/Generate") {
    stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "12" }, { endStream: true });
    return;
  }
  stream.resume();
  stream.on("end", () => {
    stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
    stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
    stream.end(reply);
  });
});
server.listen(port, "127.0.0.1", () => process.stderr.write(`echo gRPC server listening on 127.0.0.1:${port}\n`));
process.on("SIGTERM", () => process.exit(0));
