/**
 * OpenAI embeddings with the real `openai` SDK against the upstream simulator's POST /v1/embeddings:
 * the adapter (the SDK's default base64 encoding, decoded), and the SDK asking for floats.
 */
import { OpenAI } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DeploymentConfig } from "../../config.js";
import { LlmError } from "../../errors/llm-error.js";
import { startSimulator, type RequestInfo, type Simulator } from "../../simulator/index.js";
import { simVector } from "../../simulator/vectors.js";
import { OpenAiProvider } from "./openai-provider.js";

const KEY = "sk-test-embed-secret";
let sim: Simulator;
const seen: RequestInfo[] = [];

beforeAll(async () => {
  sim = await startSimulator({ apiKey: KEY });
  sim.on("request", (info) => seen.push(info));
});
afterAll(async () => {
  await sim?.close();
});

const deployment = (model = "text-embedding-3-small"): DeploymentConfig => ({ provider: "openai", model, weight: 1, options: {} });
const attempt = () => ({ signal: new AbortController().signal, timeoutMs: 5_000 });

describe("openai embeddings", () => {
  it("embeds each input in order, with the requested dimensions, the usage the upstream reports, base64 on the wire", async () => {
    const provider = new OpenAiProvider({ defaults: { apiKey: KEY, baseUrl: `${sim.url}/v1` }, credentials: new Map() });
    seen.length = 0;
    const done = await provider.embed(deployment(), { inputs: ["alpha beta", "gamma"], dimensions: 16, metadata: {} }, attempt());
    expect(done.vectors).toHaveLength(2);
    expect(done.vectors[0]).toEqual(simVector("alpha beta", 16));
    expect(done.vectors[1]).toEqual(simVector("gamma", 16));
    // The simulator counts words.
    expect(done.usage).toEqual({ inputTokens: 3, outputTokens: 0 });
    expect(seen.at(-1)).toMatchObject({
      path: "/v1/embeddings",
      body: { model: "text-embedding-3-small", input: ["alpha beta", "gamma"], dimensions: 16, encoding_format: "base64" },
    });
  });

  it("sends no dimensions when none is asked for: the model's own length", async () => {
    const provider = new OpenAiProvider({ defaults: { apiKey: KEY, baseUrl: `${sim.url}/v1` }, credentials: new Map() });
    seen.length = 0;
    const done = await provider.embed(deployment(), { inputs: ["x"], metadata: {} }, attempt());
    expect(done.vectors[0]).toHaveLength(256);
    expect(seen.at(-1)?.body).not.toHaveProperty("dimensions");
  });

  it("maps a refused key to the taxonomy, never the SDK's error", async () => {
    const provider = new OpenAiProvider({ defaults: { apiKey: "sk-wrong", baseUrl: `${sim.url}/v1` }, credentials: new Map() });
    const err = await provider.embed(deployment(), { inputs: ["x"], metadata: {} }, attempt()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LlmError);
    expect((err as LlmError).reason).toBe("PROVIDER_AUTH_FAILED");
  });

  it("maps an upstream 429 with Retry-After to PROVIDER_RATE_LIMITED with its delay, and a 503 to PROVIDER_UNAVAILABLE", async () => {
    const provider = new OpenAiProvider({ defaults: { apiKey: KEY, baseUrl: `${sim.url}/v1` }, credentials: new Map() });
    const limited = { ...deployment(), options: { "header:x-sim-status": "429", "header:x-sim-retry-after": "2" } };
    const err = await provider.embed(limited, { inputs: ["x"], metadata: {} }, attempt()).catch((e: unknown) => e);
    expect(err).toMatchObject({ reason: "PROVIDER_RATE_LIMITED", retryAfterMs: 2000 });
    const down = { ...deployment(), options: { "header:x-sim-status": "503" } };
    expect(await provider.embed(down, { inputs: ["x"], metadata: {} }, attempt()).catch((e: unknown) => e)).toMatchObject({ reason: "PROVIDER_UNAVAILABLE" });
  });

  it("stops at the attempt's timeout: PROVIDER_TIMEOUT", async () => {
    const provider = new OpenAiProvider({ defaults: { apiKey: KEY, baseUrl: `${sim.url}/v1` }, credentials: new Map() });
    const slow = { ...deployment(), options: { "header:x-sim-latency-ms": "2000" } };
    const controller = new AbortController();
    const started = Date.now();
    const err = await provider.embed(slow, { inputs: ["x"], metadata: {} }, { signal: controller.signal, timeoutMs: 100 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ reason: "PROVIDER_TIMEOUT" });
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it("the SDK asking for floats gets the same vectors as JSON numbers", async () => {
    const client = new OpenAI({ apiKey: KEY, baseURL: `${sim.url}/v1`, maxRetries: 0 });
    const res = await client.embeddings.create({ model: "text-embedding-3-small", input: "alpha beta", dimensions: 8, encoding_format: "float" });
    expect(res.data[0]?.embedding).toEqual(Array.from(simVector("alpha beta", 8)));
    expect(res.usage).toEqual({ prompt_tokens: 2, total_tokens: 2 });
    expect(seen.at(-1)?.body).toMatchObject({ encoding_format: "float" });
  });
});
