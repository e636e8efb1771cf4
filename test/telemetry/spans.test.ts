/**
 * The span tree of a call that retried once and then fell back, through the real service in
 * front of the upstream simulator: the first model's OpenAI-style upstream answers 503 twice
 * (maxAttempts 2), the router falls back to a second model whose upstream answers.
 */
import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import type { ReadableSpan } from "@opentelemetry/sdk-trace";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BatchGenerateRequestSchema, GenerateRequestSchema, LlmService, Role, StreamGenerateRequestSchema } from "../../gen/ts/llm/v1/llm_service_pb.js";
import { startSimulator, type RequestInfo, type Simulator } from "../../src/simulator/index.js";
import { CONTENT_ATTRIBUTES } from "../../src/telemetry/gen-ai.js";
import { bearer } from "../helpers/clients.js";
import { byName, callerContext, parentOf, startObservedServer, withHeaders, type ObservedServer } from "./helpers.js";

const PROMPT = "trace me through the fallback";

function catalogue(simUrl: string): string {
  return `routing:
  maxAttempts: 2
  backoffBaseMs: 5
  backoffCapMs: 10
models:
  - id: flaky
    contextWindow: 10000
    maxOutputTokens: 256
    price: { inputPerMillion: 1, outputPerMillion: 2 }
    fallbacks: [steady]
    deployments:
      - provider: openai
        model: upstream-flaky
        baseUrl: ${simUrl}/v1
        options:
          "header:x-sim-status": "503"
  - id: steady
    contextWindow: 10000
    maxOutputTokens: 256
    price: { inputPerMillion: 1, outputPerMillion: 2 }
    deployments:
      - provider: openai
        model: upstream-steady
        baseUrl: ${simUrl}/v1
        options:
          "header:x-sim-text": "echo"
  - id: slow
    contextWindow: 10000
    maxOutputTokens: 256
    deployments:
      - provider: openai
        model: upstream-slow
        baseUrl: ${simUrl}/v1
        options:
          "header:x-sim-text": "echo"
          "header:x-sim-ttft-ms": "30"
          "header:x-sim-inter-token-ms": "40"
`;
}

let sim: Simulator;
let plain: ObservedServer;
let capturing: ObservedServer;
const upstreamRequests: RequestInfo[] = [];

beforeAll(async () => {
  sim = await startSimulator();
  sim.on("request", (info: RequestInfo) => upstreamRequests.push(info));
  const env = { OPENAI_API_KEY: "sk-test-openai" };
  [plain, capturing] = await Promise.all([
    startObservedServer(env, { spans: true, catalogue: catalogue(sim.url) }),
    startObservedServer({ ...env, OTEL_CAPTURE_CONTENT: "true" }, { spans: true, catalogue: catalogue(sim.url) }),
  ]);
}, 60_000);

afterAll(async () => {
  await plain?.close();
  await capturing?.close();
  await sim?.close();
});

/** One Generate of `flaky` as a caller that is itself traced; returns the caller's context and the spans of that trace. */
async function tracedCall(server: ObservedServer, prompt: string) {
  const caller = callerContext();
  server.exporter.reset();
  upstreamRequests.length = 0;
  const client = createClient(
    LlmService,
    createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1", interceptors: [bearer(server.key), withHeaders({ traceparent: caller.traceparent })] }),
  );
  const res = await client.generate(
    create(GenerateRequestSchema, { model: "flaky", temperature: 0, messages: [{ role: Role.USER, content: prompt }] }),
    { timeoutMs: 10_000 },
  );
  const spans = server.exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === caller.traceId);
  return { caller, res, spans, upstream: [...upstreamRequests] };
}

function only(spans: readonly ReadableSpan[], name: string): ReadableSpan {
  const found = byName(spans, name);
  expect(found.map((s) => s.name), `exactly one span named ${name}`).toEqual([name]);
  return found[0]!;
}

describe("the span tree of a call that retried once, then fell back", () => {
  let call: Awaited<ReturnType<typeof tracedCall>>;
  beforeAll(async () => {
    call = await tracedCall(plain, PROMPT);
  });

  it("answers from the fallback model", () => {
    expect(call.res.model).toBe("steady");
    expect(call.res.text).toBe(PROMPT);
    expect(call.res.attempts).toBe(3);
  });

  it("continues the caller's trace with one SERVER span per RPC (RPC conventions)", () => {
    const server = only(call.spans, "llm.v1.LlmService/Generate");
    expect(server.kind).toBe(SpanKind.SERVER);
    expect(server.parentSpanContext?.spanId).toBe(call.caller.spanId);
    expect(server.attributes).toMatchObject({
      "rpc.system.name": "connectrpc",
      "rpc.system": "connect_rpc",
      "rpc.service": "llm.v1.LlmService",
      "rpc.method": "llm.v1.LlmService/Generate",
      "rpc.status_code": "OK",
      "llm.tenant": "acme",
      "gen_ai.request.model": "flaky",
      "gen_ai.response.model": "steady",
      "gen_ai.provider.name": "openai",
      "llm.attempts": 3,
      "llm.status": "ok",
    });
    expect(server.attributes["llm.request_id"]).toEqual(expect.any(String));
    expect(server.status.code).toBe(SpanStatusCode.UNSET);
  });

  it("nests auth, admission, cache lookup and the single-flight wait under the server span, and the route under the wait", () => {
    const server = only(call.spans, "llm.v1.LlmService/Generate");
    for (const name of ["auth", "admission", "cache.lookup", "single_flight"]) {
      expect(parentOf(call.spans, only(call.spans, name))?.name, name).toBe(server.name);
    }
    expect(only(call.spans, "auth").attributes["llm.tenant"]).toBe("acme");
    expect(only(call.spans, "cache.lookup").attributes["llm.cache.hit"]).toBe(false);
    expect(only(call.spans, "admission").attributes["llm.input_tokens_estimate"]).toBeGreaterThan(0);
    expect(parentOf(call.spans, only(call.spans, "route"))?.name).toBe("single_flight");
  });

  it("has one CLIENT span per provider attempt under the route, with a backoff wait between the two failures", () => {
    const route = only(call.spans, "route");
    const attempts = call.spans
      .filter((s) => s.name.startsWith("chat "))
      .sort((a, b) => a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1]);
    expect(attempts.map((s) => s.name)).toEqual(["chat upstream-flaky", "chat upstream-flaky", "chat upstream-steady"]);
    for (const a of attempts) {
      expect(a.kind).toBe(SpanKind.CLIENT);
      expect(a.parentSpanContext?.spanId).toBe(route.spanContext().spanId);
    }
    const backoff = only(call.spans, "backoff");
    expect(parentOf(call.spans, backoff)?.name).toBe("route");
    expect(backoff.attributes["llm.retry.reason"]).toBe("PROVIDER_UNAVAILABLE");
    expect(route.attributes["llm.attempts"]).toBe(3);
  });

  it("marks the failed attempts with error.type and an error status, the good one with GenAI response attributes", () => {
    const [first, second] = byName(call.spans, "chat upstream-flaky");
    for (const failed of [first!, second!]) {
      expect(failed.status.code).toBe(SpanStatusCode.ERROR);
      expect(failed.attributes["error.type"]).toBe("PROVIDER_UNAVAILABLE");
      expect(failed.attributes["gen_ai.usage.output_tokens"]).toBeUndefined();
    }
    const good = only(call.spans, "chat upstream-steady");
    expect(good.status.code).toBe(SpanStatusCode.UNSET);
    expect(good.attributes["error.type"]).toBeUndefined();
    expect(good.attributes).toMatchObject({
      "gen_ai.operation.name": "chat",
      "gen_ai.provider.name": "openai",
      "gen_ai.request.model": "upstream-steady",
      "gen_ai.response.model": "upstream-steady",
      "gen_ai.request.temperature": 0,
      "gen_ai.request.max_tokens": 256,
      "gen_ai.usage.input_tokens": Number(call.res.usage?.inputTokens),
      "gen_ai.usage.output_tokens": Number(call.res.usage?.outputTokens),
      "gen_ai.response.finish_reasons": ["stop"],
      "llm.model": "steady",
    });
    expect(Number(call.res.usage?.outputTokens)).toBeGreaterThan(0);
    expect(good.attributes["gen_ai.response.time_to_first_chunk"]).toEqual(expect.any(Number));
    expect(good.events.map((e) => e.name)).toContain("gen_ai.first_token");
  });

  it("puts no prompt or completion text on any span by default", () => {
    for (const span of call.spans) {
      for (const name of CONTENT_ATTRIBUTES) expect(span.attributes[name], `${span.name} ${name}`).toBeUndefined();
      expect(JSON.stringify(span.attributes)).not.toContain(PROMPT);
      expect(JSON.stringify(span.events)).not.toContain(PROMPT);
    }
  });

  it("sends each upstream request the traceparent of its own attempt span, in the caller's trace", () => {
    const attempts = call.spans.filter((s) => s.name.startsWith("chat "));
    expect(call.upstream).toHaveLength(3);
    const sent = call.upstream.map((r) => String(r.headers["traceparent"]));
    for (const header of sent) expect(header).toMatch(new RegExp(`^00-${call.caller.traceId}-[0-9a-f]{16}-01$`));
    const parentIds = sent.map((h) => h.split("-")[2]).sort();
    expect(parentIds).toEqual(attempts.map((s) => s.spanContext().spanId).sort());
  });
});

describe("a server stream", () => {
  it("is one span from the call to the stream's end, with time to first token as attribute and event", async () => {
    const caller = callerContext();
    plain.exporter.reset();
    const client = createClient(
      LlmService,
      createConnectTransport({ baseUrl: plain.baseUrl, httpVersion: "2", interceptors: [bearer(plain.key), withHeaders({ traceparent: caller.traceparent })] }),
    );
    let messages = 0;
    for await (const _ of client.streamGenerate(
      create(StreamGenerateRequestSchema, { model: "slow", messages: [{ role: Role.USER, content: "one two three four five" }] }),
    )) {
      messages++;
    }
    expect(messages).toBe(7); // started, 5 deltas, completed
    const spans = plain.exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === caller.traceId);
    const server = only(spans, "llm.v1.LlmService/StreamGenerate");
    const attempt = only(spans, "chat upstream-slow");
    const ms = (t: [number, number]) => t[0] * 1000 + t[1] / 1e6;
    // 30 ms to the first token and 4 x 40 ms between the five: the server span lasts past all of it.
    expect(ms(server.duration)).toBeGreaterThanOrEqual(180);
    expect(ms(server.endTime)).toBeGreaterThanOrEqual(ms(attempt.endTime));
    expect(server.attributes["rpc.status_code"]).toBe("OK");
    expect(server.attributes["gen_ai.usage.output_tokens"]).toBe(5);
    const ttft = server.attributes["gen_ai.response.time_to_first_chunk"];
    expect(ttft).toBeGreaterThanOrEqual(0.03);
    expect(ttft).toBeLessThan(ms(server.duration) / 1000);
    const event = server.events.find((e) => e.name === "gen_ai.first_token");
    expect(event?.attributes?.["gen_ai.response.time_to_first_chunk"]).toBe(ttft);
    expect(ms(event!.time)).toBeLessThan(ms(server.endTime) - 100);
    // The stream's route ran with the server span active: it is the route's parent.
    expect(parentOf(spans, only(spans, "route"))?.name).toBe("llm.v1.LlmService/StreamGenerate");
  });
});

describe("a batch", () => {
  it("has one batch_item span per item under the server span, each with its own route and attempt", async () => {
    const caller = callerContext();
    plain.exporter.reset();
    const client = createClient(
      LlmService,
      createConnectTransport({ baseUrl: plain.baseUrl, httpVersion: "1.1", interceptors: [bearer(plain.key), withHeaders({ traceparent: caller.traceparent })] }),
    );
    const res = await client.batchGenerate(
      create(BatchGenerateRequestSchema, {
        requests: ["first item", "second item"].map((content) => ({ model: "steady", messages: [{ role: Role.USER, content }] })),
      }),
    );
    expect(res.results).toHaveLength(2);
    const spans = plain.exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === caller.traceId);
    const server = only(spans, "llm.v1.LlmService/BatchGenerate");
    const items = byName(spans, "batch_item");
    expect(items.map((i) => i.attributes["llm.batch.index"]).sort()).toEqual([0, 1]);
    for (const item of items) {
      expect(item.parentSpanContext?.spanId).toBe(server.spanContext().spanId);
      expect(item.attributes["gen_ai.response.model"]).toBe("steady");
      const route = spans.find((s) => s.name === "route" && s.parentSpanContext?.spanId === item.spanContext().spanId);
      expect(route, "a route under each item").toBeDefined();
      expect(spans.filter((s) => s.name === "chat upstream-steady" && s.parentSpanContext?.spanId === route?.spanContext().spanId)).toHaveLength(1);
    }
  });
});

describe("OTEL_CAPTURE_CONTENT=true", () => {
  it("puts the prompt and the completion on the attempt spans, and nowhere else", async () => {
    const prompt = "capture this prompt";
    const call = await tracedCall(capturing, prompt);
    const good = only(call.spans, "chat upstream-steady");
    expect(JSON.parse(String(good.attributes["gen_ai.input.messages"]))).toEqual([{ role: "user", parts: [{ type: "text", content: prompt }] }]);
    expect(JSON.parse(String(good.attributes["gen_ai.output.messages"]))).toEqual([
      { role: "assistant", parts: [{ type: "text", content: prompt }], finish_reason: "stop" },
    ]);
    for (const failed of byName(call.spans, "chat upstream-flaky")) expect(String(failed.attributes["gen_ai.input.messages"])).toContain(prompt);
    for (const span of call.spans.filter((s) => !s.name.startsWith("chat "))) {
      expect(JSON.stringify(span.attributes), span.name).not.toContain(prompt);
    }
  });
});
