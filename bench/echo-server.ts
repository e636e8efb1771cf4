/**
 * The ceiling: a bare node:http2 gRPC server that answers /llm.v1.LlmService/Generate with one
 * fixed GenerateResponse, with no framework, no upstream call and no parsing of the request.
 * Usage: node bench/echo-server.ts PORT
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { grpcFrame, pb, serveGenerate } from "./proto.ts";

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

serveGenerate("echo", port, (call) => call.ok(reply));
