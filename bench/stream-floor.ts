/**
 * A floor for streams: the least a Node gateway can do per streamed token. A bare node:http2 gRPC
 * server that answers /llm.v1.LlmService/StreamGenerate by opening one streamed chat completion to
 * the upstream over node:http (keep-alive agent), splitting its event stream on blank lines in the
 * socket's 'data' handler, JSON.parse'ing each event, and writing one StreamGenerateResponse delta
 * frame per token, then a completed event and the trailers. No auth, ledger, limits, metrics,
 * routing, SDK or web streams: what is left is Node's own cost per read and per write.
 * Usage: node bench/stream-floor.ts PORT UPSTREAM_PORT
 */
import http from "node:http";
import http2 from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { grpcFrame, pb } from "./proto.ts";

const [port, upstreamPort] = [Number(process.argv[2]), Number(process.argv[3])];
if (!Number.isInteger(port) || !Number.isInteger(upstreamPort)) {
  process.stderr.write("usage: node bench/stream-floor.ts PORT UPSTREAM_PORT\n");
  process.exit(2);
}
const agent = new http.Agent({ keepAlive: true, maxSockets: 4096, maxFreeSockets: 1024 });
const upstreamBody = JSON.stringify({
  model: "gpt-4o-mini",
  messages: [{ role: "user", content: "Stream to the benchmark." }],
  max_tokens: 64,
  stream: true,
  stream_options: { include_usage: true },
});

const server = http2.createServer();
server.on("stream", (stream, headers) => {
  stream.on("error", () => {});
  if (headers[":path"] !== "/llm.v1.LlmService/StreamGenerate") {
    stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "12" }, { endStream: true });
    return;
  }
  stream.resume();
  stream.on("end", () => {
    const upstream = http.request(
      { host: "127.0.0.1", port: upstreamPort, path: "/v1/chat/completions", method: "POST", agent, headers: { "content-type": "application/json", authorization: "Bearer sk-bench" } },
      (res) => {
        stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
        stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
        stream.write(grpcFrame(toBinary(pb.StreamGenerateResponseSchema, create(pb.StreamGenerateResponseSchema, { event: { case: "started", value: { id: "floor", model: "bench/paced", provider: "openai" } } }))));
        let buffer = "";
        let outputTokens = 0;
        res.setEncoding("utf8");
        res.on("data", (text: string) => {
          buffer += text;
          let end: number;
          while ((end = buffer.indexOf("\n\n")) !== -1) {
            const event = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            if (!event.startsWith("data: ") || event === "data: [DONE]") continue;
            const chunk = JSON.parse(event.slice(6)) as { choices?: { delta?: { content?: string } }[]; usage?: { completion_tokens: number } };
            if (chunk.usage) outputTokens = chunk.usage.completion_tokens;
            const content = chunk.choices?.[0]?.delta?.content;
            if (content) stream.write(grpcFrame(toBinary(pb.StreamGenerateResponseSchema, create(pb.StreamGenerateResponseSchema, { event: { case: "delta", value: { text: content } } }))));
          }
        });
        res.on("end", () => {
          const completed = create(pb.StreamGenerateResponseSchema, {
            event: { case: "completed", value: { finishReason: pb.FinishReason.STOP, usage: { inputTokens: 8n, outputTokens: BigInt(outputTokens) } } },
          });
          stream.end(grpcFrame(toBinary(pb.StreamGenerateResponseSchema, completed)));
        });
      },
    );
    upstream.on("error", () => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR));
    upstream.end(upstreamBody);
  });
});
server.listen(port, "127.0.0.1", () => process.stderr.write(`stream floor listening on 127.0.0.1:${port}\n`));
process.on("SIGTERM", () => process.exit(0));
