/**
 * A floor: the least a Node gateway can do per unary call. A bare node:http2 gRPC server that
 * answers /llm.v1.LlmService/Generate with one upstream chat completion (the 16-token simulator)
 * and a GenerateResponse built from its text — no auth, ledger, limits, metrics or routing.
 *   http: the upstream call over node:http with a keep-alive agent, body read and JSON.parse'd;
 *   sdk:  the upstream call through the `openai` SDK over the gateway's own pooled fetch
 *         (src/providers/http.ts), exactly as the gateway's openai adapter makes it.
 * The gap between the two is the SDK's own cost; the gap to the gateway is the gateway's.
 * Usage: node bench/floor-server.ts PORT UPSTREAM_PORT http|sdk
 */
import http from "node:http";
import { create, toBinary } from "@bufbuild/protobuf";
import { OpenAI } from "openai";
import { grpcFrame, pb, serveGenerate } from "./proto.ts";

// The built module (npm run bench builds dist/ first), typed by its source: dist has no declarations.
const built: string = "../dist/src/providers/http.js";
const { createHttpFetch } = (await import(built)) as typeof import("../src/providers/http.ts");

const [port, upstreamPort] = [Number(process.argv[2]), Number(process.argv[3])];
const mode = process.argv[4];
if (!Number.isInteger(port) || !Number.isInteger(upstreamPort) || (mode !== "http" && mode !== "sdk")) {
  process.stderr.write("usage: node bench/floor-server.ts PORT UPSTREAM_PORT http|sdk\n");
  process.exit(2);
}

const baseURL = `http://127.0.0.1:${upstreamPort}/v1`;
const messages = [{ role: "user" as const, content: "Say hello to the benchmark." }];
const body = JSON.stringify({ model: "gpt-4o-mini", messages, max_tokens: 16 });
const agent = new http.Agent({ keepAlive: true, maxSockets: 4096, maxFreeSockets: 256 });
const pooled = createHttpFetch({ maxSocketsPerOrigin: 4096, maxIdlePerOrigin: 256 });
const client = new OpenAI({
  apiKey: "sk-bench",
  baseURL,
  organization: null,
  project: null,
  webhookSecret: null,
  adminAPIKey: null,
  maxRetries: 0,
  logLevel: "off",
  fetch: pooled.fetch,
});

interface Completion {
  choices: { message: { content: string | null } }[];
}

function viaHttp(): Promise<Completion> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${baseURL}/chat/completions`,
      { method: "POST", agent, headers: { "content-type": "application/json", authorization: "Bearer sk-bench", "content-length": Buffer.byteLength(body) } },
      (res) => {
        const parts: Buffer[] = [];
        res.on("data", (d: Buffer) => parts.push(d));
        res.on("end", () => {
          try {
            resolve(JSON.parse(Buffer.concat(parts).toString("utf8")) as Completion);
          } catch (err) {
            reject(err as Error);
          }
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

const viaSdk = (): Promise<Completion> => client.chat.completions.create({ model: "gpt-4o-mini", messages, max_tokens: 16 });

serveGenerate(`floor (${mode})`, port, (call) => {
  (mode === "sdk" ? viaSdk() : viaHttp()).then((completion) => {
    if (call.gone()) return;
    const reply = create(pb.GenerateResponseSchema, {
      model: "bench/echo",
      provider: "openai",
      text: completion.choices[0]?.message.content ?? "",
      finishReason: pb.FinishReason.STOP,
    });
    call.ok(grpcFrame(toBinary(pb.GenerateResponseSchema, reply)));
  }, call.fail);
});
