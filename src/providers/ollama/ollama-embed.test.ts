/** Ollama embeddings with the real `ollama` package against the upstream simulator's POST /api/embed. */
import { Ollama } from "ollama";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DeploymentConfig } from "../../config.js";
import { LlmError } from "../../errors/llm-error.js";
import { startSimulator, type RequestInfo, type Simulator } from "../../simulator/index.js";
import { simVector } from "../../simulator/vectors.js";
import { OllamaProvider } from "./ollama-provider.js";

let sim: Simulator;
const seen: RequestInfo[] = [];

beforeAll(async () => {
  sim = await startSimulator({});
  sim.on("request", (info) => seen.push(info));
});
afterAll(async () => {
  await sim?.close();
});

const deployment = (baseUrl: string): DeploymentConfig => ({ provider: "ollama", model: "nomic-embed-text", weight: 1, options: {}, baseUrl });
const attempt = () => ({ signal: new AbortController().signal, timeoutMs: 5_000 });

describe("ollama embeddings", () => {
  it("embeds each input in order, with the requested dimensions and the prompt's token count", async () => {
    const provider = new OllamaProvider({ defaults: {}, credentials: new Map() });
    seen.length = 0;
    const done = await provider.embed(deployment(sim.url), { inputs: ["alpha beta", "gamma"], dimensions: 12, metadata: {} }, attempt());
    expect(done.vectors).toEqual([simVector("alpha beta", 12), simVector("gamma", 12)]);
    expect(done.usage).toEqual({ inputTokens: 3, outputTokens: 0 });
    expect(seen.at(-1)).toMatchObject({ path: "/api/embed", body: { model: "nomic-embed-text", input: ["alpha beta", "gamma"], dimensions: 12 } });
  });

  it("an unreachable server is PROVIDER_UNAVAILABLE", async () => {
    const provider = new OllamaProvider({ defaults: {}, credentials: new Map() });
    const err = await provider.embed(deployment("http://127.0.0.1:9"), { inputs: ["x"], metadata: {} }, attempt()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LlmError);
    expect((err as LlmError).reason).toBe("PROVIDER_UNAVAILABLE");
  });

  it("maps an upstream 503 to PROVIDER_UNAVAILABLE and a 429's Retry-After to its delay", async () => {
    const provider = new OllamaProvider({ defaults: {}, credentials: new Map() });
    const down = { ...deployment(sim.url), options: { "header:x-sim-status": "503" } };
    expect(await provider.embed(down, { inputs: ["x"], metadata: {} }, attempt()).catch((e: unknown) => e)).toMatchObject({ reason: "PROVIDER_UNAVAILABLE" });
    const limited = { ...deployment(sim.url), options: { "header:x-sim-status": "429", "header:x-sim-retry-after": "3" } };
    expect(await provider.embed(limited, { inputs: ["x"], metadata: {} }, attempt()).catch((e: unknown) => e)).toMatchObject({
      reason: "PROVIDER_RATE_LIMITED",
      retryAfterMs: 3000,
    });
  });

  it("the package's own client.embed reads the simulator's answer", async () => {
    const client = new Ollama({ host: sim.url });
    const res = await client.embed({ model: "nomic-embed-text", input: "alpha beta" });
    expect(res.embeddings).toEqual([Array.from(simVector("alpha beta"))]);
    expect(res.prompt_eval_count).toBe(2);
  });
});
