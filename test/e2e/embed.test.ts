/**
 * The Embed RPC through the real service, over gRPC, Connect and gRPC-web (the fast path and
 * connect-node), with the upstream simulator behind OpenAI and Ollama deployments: vectors,
 * dimensions, determinism, usage, the ledger row and GetUsage, the cache, and the refusals (a
 * chat-only model; Anthropic, which has no embeddings) before any upstream call.
 */
import { randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CacheMode } from "../../gen/ts/llm/v1/llm_service_pb.js";
import type { RequestInfo } from "../../src/simulator/index.js";
import { simVector } from "../../src/simulator/vectors.js";
import { PROTOCOLS } from "../helpers/clients.js";
import { startHarness, type Harness } from "../helpers/harness.js";
import { detailsOf, rejection } from "../helpers/rpc-outcomes.js";

const catalogue = (upstream: string) => `
routing:
  maxAttempts: 2
  backoffBaseMs: 1
  backoffCapMs: 5
models:
  - id: sim/embed
    aliases: [embed]
    contextWindow: 8192
    maxOutputTokens: 1
    price: { inputPerMillion: 0.02, outputPerMillion: 0 }
    capabilities: [embeddings]
    deployments:
      - { provider: sim, model: embed }
  - id: up/openai-embed
    contextWindow: 8192
    maxOutputTokens: 1
    capabilities: [embeddings]
    deployments:
      - { provider: openai, model: text-embedding-3-small, baseUrl: "${upstream}/v1" }
  - id: up/openai-flaky
    contextWindow: 8192
    maxOutputTokens: 1
    capabilities: [embeddings]
    deployments:
      - provider: openai
        model: text-embedding-3-small
        baseUrl: "${upstream}/v1"
        options: { "header:x-sim-fail-times": "1", "header:x-sim-fail-key": "embed-flaky" }
  - id: up/ollama-embed
    contextWindow: 8192
    maxOutputTokens: 1
    price: { inputPerMillion: 1, outputPerMillion: 0 }
    capabilities: [embeddings]
    deployments:
      - { provider: ollama, model: nomic-embed-text, baseUrl: "${upstream}" }
  - id: up/anthropic-embed
    contextWindow: 8192
    maxOutputTokens: 1
    price: { inputPerMillion: 1, outputPerMillion: 0 }
    capabilities: [embeddings]
    deployments:
      - { provider: anthropic, model: claude-embed, baseUrl: "${upstream}" }
  - id: up/chat
    contextWindow: 8192
    maxOutputTokens: 256
    price: { inputPerMillion: 2, outputPerMillion: 8 }
    deployments:
      - { provider: openai, model: sim-gpt, baseUrl: "${upstream}/v1" }
`;

let server: Harness;
const seen: RequestInfo[] = [];

beforeAll(async () => {
  server = await startHarness({ simulator: true, catalogue, env: { OPENAI_API_KEY: "sk-test", ANTHROPIC_API_KEY: "sk-ant-test" }, observe: { spans: true } });
  server.sim!.on("request", (info) => seen.push(info));
}, 60_000);
afterAll(async () => {
  await server?.close();
});

/** Requests that reached the upstream with `marker` in their body. */
const upstreamCalls = (marker: string) => seen.filter((r) => JSON.stringify(r.body).includes(marker)).length;

async function ledgerRow(requestId: string) {
  await server.app.ledger.flush();
  return server.app.database.db.selectFrom("generations").selectAll().where("request_id", "=", requestId).executeTakeFirstOrThrow();
}

describe("Embed", () => {
  it.each(PROTOCOLS)("returns one vector per input with the requested dimensions, the same on every call, over %s", async (protocol) => {
    const client = server.client(protocol);
    const inputs = ["the quick brown fox", "jumps over the lazy dog"];
    const res = await client.embed({ model: "sim/embed", inputs, dimensions: 8, cache: { mode: CacheMode.BYPASS } });
    expect(res).toMatchObject({ model: "sim/embed", provider: "sim", cached: false, attempts: 1 });
    expect(res.embeddings.map((e) => e.index)).toEqual([0, 1]);
    expect(res.embeddings.map((e) => e.values)).toEqual(inputs.map((t) => Array.from(simVector(t, 8))));
    const norm = Math.hypot(...(res.embeddings[0]?.values ?? []));
    expect(norm).toBeCloseTo(1, 5);
    // 4 + 5 words (the sim's approximate tokenizer); nothing is output.
    expect(res.usage).toMatchObject({ inputTokens: 9n, outputTokens: 0n, totalTokens: 9n });
    // 9 tokens at $0.02 per million: 180 nanodollars.
    expect(res.costUsdNanos).toBe(180n);
    // By its alias too: the same vectors.
    const again = await client.embed({ model: "embed", inputs, dimensions: 8, cache: { mode: CacheMode.BYPASS } });
    expect(again.embeddings).toEqual(res.embeddings);
  });

  it("writes a ledger row (input tokens at the input price, output 0) that GetUsage counts under the model", async () => {
    const client = server.client("grpc");
    const before = (await client.getUsage({})).byModel.find((m) => m.model === "up/ollama-embed")?.totals;
    // 2 tokens at $1 per million: 2,000 nanodollars.
    const res = await client.embed({ model: "up/ollama-embed", inputs: [`ledger ${randomUUID()}`], metadata: { job: "index" } });
    expect(res.provider).toBe("ollama");
    const row = await ledgerRow(res.id);
    expect(row).toMatchObject({ model: "up/ollama-embed", provider: "ollama", status: "ok", input_tokens: 2, output_tokens: 0, cost_usd_nanos: "2000", cached: false });
    const after = (await client.getUsage({})).byModel.find((m) => m.model === "up/ollama-embed")?.totals;
    expect(after?.requests).toBe((before?.requests ?? 0n) + 1n);
    expect(after?.usage?.inputTokens).toBe((before?.usage?.inputTokens ?? 0n) + 2n);
    expect(after?.usage?.outputTokens).toBe(0n);
    expect(after?.costUsdNanos).toBe((before?.costUsdNanos ?? 0n) + 2000n);
  });

  it("reaches OpenAI's wire (POST /v1/embeddings) through the SDK, with the dimensions asked for", async () => {
    const marker = `oa-${randomUUID()}`;
    const res = await server.client("connect-h1").embed({ model: "up/openai-embed", inputs: [marker, "second"], dimensions: 32 });
    expect(res).toMatchObject({ provider: "openai", model: "up/openai-embed" });
    expect(res.embeddings.map((e) => e.values)).toEqual([Array.from(simVector(marker, 32)), Array.from(simVector("second", 32))]);
    const request = seen.find((r) => JSON.stringify(r.body).includes(marker));
    expect(request).toMatchObject({ path: "/v1/embeddings", body: { model: "text-embedding-3-small", dimensions: 32 } });
    // text-embedding-3-small's default price: $0.02 per million input tokens (2 words: 40 nanodollars).
    expect(res.costUsdNanos).toBe(40n);
  });

  it("answers a repeat from the cache with CACHE_MODE_FORCE: one upstream call, the second free", async () => {
    const client = server.client("grpc");
    const marker = `cache-${randomUUID()}`;
    const req = { model: "up/openai-embed", inputs: [marker], dimensions: 4, cache: { mode: CacheMode.FORCE } };
    const first = await client.embed(req);
    const second = await client.embed(req);
    expect(first.cached).toBe(false);
    expect(second).toMatchObject({ cached: true, costUsdNanos: 0n, attempts: 0, provider: "openai" });
    expect(second.embeddings).toEqual(first.embeddings);
    expect(upstreamCalls(marker)).toBe(1);
    // Other dimensions are another request.
    await client.embed({ ...req, dimensions: 5 });
    expect(upstreamCalls(marker)).toBe(2);
    expect(await ledgerRow(second.id)).toMatchObject({ cached: true, cost_usd_nanos: "0" });
  });

  it("refuses a chat-only model before any upstream call, naming it", async () => {
    const marker = `chat-${randomUUID()}`;
    const err = await rejection(server.client("grpc").embed({ model: "up/chat", inputs: [marker] }));
    expect(err.code).toBe(Code.InvalidArgument);
    const { info, badRequest } = detailsOf(err);
    expect(info).toMatchObject({ reason: "INVALID_REQUEST", metadata: { model: "up/chat", capability: "embeddings" } });
    expect(badRequest?.fieldViolations[0]?.field).toBe("model");
    expect(err.rawMessage).toContain("up/chat");
    expect(upstreamCalls(marker)).toBe(0);
  });

  it("refuses Anthropic, which has no embeddings API, as UNIMPLEMENTED naming the provider, without an upstream call or a charge", async () => {
    const marker = `ant-${randomUUID()}`;
    const err = await rejection(server.client("connect-h2").embed({ model: "up/anthropic-embed", inputs: [marker] }));
    expect(err.code).toBe(Code.Unimplemented);
    expect(detailsOf(err).info).toMatchObject({ reason: "CAPABILITY_NOT_SUPPORTED", metadata: { provider: "anthropic", capability: "embeddings" } });
    expect(err.rawMessage).toContain("anthropic");
    expect(upstreamCalls(marker)).toBe(0);
    const requestId = err.metadata.get("x-request-id");
    expect(requestId).toBeTruthy();
    expect(await ledgerRow(requestId!)).toMatchObject({ status: "failed", error_reason: "CAPABILITY_NOT_SUPPORTED", cost_usd_nanos: "0" });
  });

  it("falls back from Anthropic to the request's fallback model, and retries a failing attempt, like a generation", async () => {
    const client = server.client("grpc");
    const res = await client.embed({ model: "up/anthropic-embed", inputs: ["fall back"], fallbackModels: ["sim/embed"], dimensions: 2 });
    expect(res).toMatchObject({ model: "sim/embed", provider: "sim", attempts: 2 });
    expect(res.embeddings[0]?.values).toEqual(Array.from(simVector("fall back", 2)));
    const row = await ledgerRow(res.id);
    expect((row.attempts as { reason: string }[]).map((a) => a.reason)).toEqual(["CAPABILITY_NOT_SUPPORTED", "OK"]);

    // The sim's scripted failure: a retryable reason on every attempt (both), then the error.
    const err = await rejection(client.embed({ model: "sim/embed", inputs: ["x"], metadata: { "sim-fail": "PROVIDER_UNAVAILABLE" }, cache: { mode: CacheMode.BYPASS } }));
    expect(err.code).toBe(Code.Unavailable);
    expect(detailsOf(err).info?.reason).toBe("PROVIDER_UNAVAILABLE");
  });

  it("retries an upstream 503 from /v1/embeddings on the same deployment", async () => {
    const res = await server.client("grpc").embed({ model: "up/openai-flaky", inputs: ["retry me"] });
    expect(res).toMatchObject({ provider: "openai", attempts: 2 });
    const row = await ledgerRow(res.id);
    expect((row.attempts as { reason: string }[]).map((a) => a.reason)).toEqual(["PROVIDER_UNAVAILABLE", "OK"]);
  });

  it("refuses a chat-only fallback model", async () => {
    const err = await rejection(server.client("grpc").embed({ model: "sim/embed", inputs: ["x"], fallbackModels: ["up/chat"] }));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(detailsOf(err).badRequest?.fieldViolations[0]?.field).toBe("fallback_models[0]");
  });

  it("bounds the number and size of inputs, and the dimensions, with a BadRequest", async () => {
    const client = server.client("grpc");
    const cases: [{ model: string; inputs: string[]; dimensions?: number }, string][] = [
      [{ model: "sim/embed", inputs: [] }, "inputs"],
      [{ model: "sim/embed", inputs: Array.from({ length: 257 }, () => "x") }, "inputs"],
      [{ model: "sim/embed", inputs: ["ok", ""] }, "inputs[1]"],
      [{ model: "sim/embed", inputs: ["x".repeat(100_001)] }, "inputs[0]"],
      [{ model: "sim/embed", inputs: ["x"], dimensions: 0 }, "dimensions"],
    ];
    for (const [req, field] of cases) {
      const err = await rejection(client.embed(req));
      expect(err.code).toBe(Code.InvalidArgument);
      expect(detailsOf(err).badRequest?.fieldViolations.map((v) => v.field)).toContain(field);
    }
    const unknown = await rejection(client.embed({ model: "nope", inputs: ["x"] }));
    expect(unknown.code).toBe(Code.NotFound);
  });

  it("counts the inputs' tokens against the key's token limit (output 0), and refuses past it", async () => {
    const key = await server.app.keys.create({ name: "embed-limits", tenant: `embed-${randomUUID()}`, limits: { tokensPerMinute: 10 } });
    const client = server.client("grpc", key.secret);
    // 4 + 4 words: 8 tokens, within 10 (nothing is reserved for output).
    const inputs = ["one two three four", "five six seven eight"];
    expect((await client.embed({ model: "sim/embed", inputs, cache: { mode: CacheMode.BYPASS } })).usage?.inputTokens).toBe(8n);
    const err = await rejection(client.embed({ model: "sim/embed", inputs, cache: { mode: CacheMode.BYPASS } }));
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(detailsOf(err).info?.reason).toBe("RATE_LIMITED");
  });

  it("traces the call and its attempt as GenAI embeddings spans, without the input text", async () => {
    const marker = `span-${randomUUID()}`;
    const res = await server.client("grpc").embed({ model: "up/openai-embed", inputs: [marker], dimensions: 3 });
    const spans = server.exporter.getFinishedSpans();
    const attempt = spans.find((s) => s.name === "embeddings text-embedding-3-small" && s.attributes["llm.embed.inputs"] === 1);
    expect(attempt?.attributes).toMatchObject({ "gen_ai.operation.name": "embeddings", "gen_ai.provider.name": "openai", "gen_ai.request.model": "text-embedding-3-small" });
    const rpc = spans.find((s) => s.attributes["llm.request_id"] === res.id && s.attributes["gen_ai.operation.name"] === "embeddings");
    expect(rpc?.attributes).toMatchObject({ "gen_ai.response.model": "up/openai-embed", "gen_ai.usage.input_tokens": 1, "gen_ai.usage.output_tokens": 0 });
    expect(JSON.stringify(spans.map((s) => s.attributes))).not.toContain(marker);
    expect(server.logLines.join("\n")).not.toContain(marker);
  });

  it("ListModels shows the embeddings capability", async () => {
    const { models } = await server.client("grpc").listModels({});
    expect(models.find((m) => m.id === "sim/embed")?.capabilities).toEqual(["embeddings"]);
    expect(models.find((m) => m.id === "up/chat")?.capabilities).toEqual(["chat", "streaming"]);
  });

  it("is served to a plain @grpc/grpc-js client", async () => {
    const client = server.grpcJs();
    try {
      const { EmbedRequestSchema } = await import("../../gen/ts/llm/v1/llm_service_pb.js");
      const { create } = await import("@bufbuild/protobuf");
      const { grpcMetadata } = await import("../helpers/clients.js");
      const res = await new Promise<{ embeddings: { values: number[] }[] }>((resolve, reject) =>
        client["embed"]!(create(EmbedRequestSchema, { model: "sim/embed", inputs: ["grpc js"], dimensions: 3 }), grpcMetadata(server.key), (err: Error | null, value: { embeddings: { values: number[] }[] }) =>
          err ? reject(err) : resolve(value),
        ),
      );
      expect(res.embeddings[0]?.values).toEqual(Array.from(simVector("grpc js", 3)));
    } finally {
      client.close();
    }
  });
});
