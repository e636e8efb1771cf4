/**
 * A closed-loop gRPC unary load generator for what h2load cannot do: a different prompt on every
 * call (h2load sends one body), so the response cache misses and writes every time and no two
 * calls share a single flight. `concurrency` h2c sessions, one call at a time each, for a fixed time.
 */
import http2 from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { grpcFrame, pb } from "./proto.ts";
import { summarize, type Latency } from "./stats.ts";

export interface UnarySpec {
  port: number;
  apiKey: string;
  model: string;
  concurrency: number;
  durationMs: number;
  warmUpMs: number;
  /** CACHE_MODE_* for every call. */
  cacheMode: number;
  /** Makes prompts unique to this run (several runs against one gateway must not hit each other's entries). */
  tag: string;
}

export interface UnaryResult {
  rps: number;
  latency: Latency;
  ok: number;
  /** Every call that ended, the warm-up's included (for CPU time over the whole run). */
  calls: number;
  /** Non-zero grpc-status or a broken stream; codes and counts in `codes`. */
  errors: number;
  codes: string;
}

export async function grpcUnaryLoad(spec: UnarySpec): Promise<UnaryResult> {
  const sessions: http2.ClientHttp2Session[] = [];
  for (let i = 0; i < spec.concurrency; i++) {
    const s = http2.connect(`http://127.0.0.1:${spec.port}`);
    s.on("error", () => {});
    sessions.push(s);
  }
  await Promise.all(sessions.map((s) => new Promise<void>((r) => (s.connecting ? s.once("connect", () => r()) : r()))));

  let seq = 0;
  const call = (s: http2.ClientHttp2Session): Promise<string> =>
    new Promise((resolve) => {
      const body = grpcFrame(
        toBinary(
          pb.GenerateRequestSchema,
          create(pb.GenerateRequestSchema, {
            model: spec.model,
            messages: [{ role: pb.Role.USER, content: `Say hello to the benchmark, call ${spec.tag}-${++seq}.` }],
            maxOutputTokens: 16,
            cache: { mode: spec.cacheMode },
          }),
        ),
      );
      let status = "none";
      const req = s.request({
        ":method": "POST",
        ":path": "/llm.v1.LlmService/Generate",
        "content-type": "application/grpc",
        te: "trailers",
        authorization: `Bearer ${spec.apiKey}`,
        "grpc-timeout": "30000m",
      });
      req.on("response", (h) => {
        if (h["grpc-status"] !== undefined) status = String(h["grpc-status"]);
      });
      req.on("trailers", (h) => {
        if (h["grpc-status"] !== undefined) status = String(h["grpc-status"]);
      });
      req.on("data", () => {});
      req.on("error", () => (status = "stream error"));
      req.on("close", () => resolve(status));
      req.end(body);
    });

  const start = performance.now();
  const measureFrom = start + spec.warmUpMs;
  const end = measureFrom + spec.durationMs;
  const latencies: number[] = [];
  const codes = new Map<string, number>();
  let ok = 0;
  let calls = 0;
  let lastEnd = measureFrom;
  await Promise.all(
    sessions.map(async (s) => {
      while (performance.now() < end) {
        const t = performance.now();
        const status = await call(s);
        const done = performance.now();
        calls++;
        if (t < measureFrom) continue;
        lastEnd = Math.max(lastEnd, done);
        latencies.push(done - t);
        if (status === "0") ok++;
        else codes.set(status, (codes.get(status) ?? 0) + 1);
      }
    }),
  );
  for (const s of sessions) s.close();
  const errors = [...codes.values()].reduce((a, b) => a + b, 0);
  return {
    rps: latencies.length / ((lastEnd - measureFrom) / 1000),
    latency: summarize(latencies),
    ok,
    calls,
    errors,
    codes: [...codes].map(([c, n]) => `grpc-status ${c}:${n}`).join(" "),
  };
}
