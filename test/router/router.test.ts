import { describe, expect, it } from "vitest";
import { parseCatalogue, type DeploymentConfig } from "../../src/config.js";
import { LlmError } from "../../src/errors/llm-error.js";
import type { Provider, ProviderEvent } from "../../src/providers/provider.js";
import { Catalogue, costOf } from "../../src/router/catalogue.js";
import { orderDeployments, Router } from "../../src/router/router.js";
import { freshTrace, routeEvents, streamProvider } from "../helpers/route.js";

const dep = (provider: string, model: string, weight = 1): DeploymentConfig => ({ provider: provider as "sim", model, weight, options: {} });

function catalogue() {
  return new Catalogue(parseCatalogue({
    routing: { maxAttempts: 1 },
    models: [
      {
        id: "a",
        aliases: ["alias-a"],
        contextWindow: 100,
        maxOutputTokens: 10,
        price: { inputPerMillion: 1, outputPerMillion: 2 },
        capabilities: [],
        deployments: [dep("openai", "a1")],
        fallbacks: ["b"],
      },
      {
        id: "b",
        aliases: [],
        contextWindow: 100,
        maxOutputTokens: 10,
        price: { inputPerMillion: 0, outputPerMillion: 0 },
        capabilities: [],
        deployments: [dep("anthropic", "b1")],
        fallbacks: [],
      },
    ],
  }));
}

/** A provider that fails with the given reason, or streams "ok" when reason is undefined. */
function provider(name: string, reason?: LlmError["reason"], calls: string[] = []): Provider {
  return streamProvider({
    name,
    async *stream(d: DeploymentConfig): AsyncGenerator<ProviderEvent> {
      calls.push(`${name}:${d.model}`);
      if (reason) throw new LlmError(reason, `${name} failed`);
      yield { type: "delta", text: "ok" };
      yield { type: "done", finishReason: "stop", usage: { inputTokens: 1, outputTokens: 1 } };
    },
  });
}

async function drain(it: AsyncIterable<ProviderEvent>): Promise<string> {
  let text = "";
  for await (const e of it) if (e.type === "delta") text += e.text;
  return text;
}

const request = () => ({ system: "", messages: [], maxOutputTokens: 10, stop: [], metadata: {} });
const fresh = freshTrace;

describe("router", () => {
  it("falls back to the configured fallback model when the first deployment is unavailable", async () => {
    const cat = catalogue();
    const calls: string[] = [];
    const router = new Router(cat, new Map([["openai", provider("flaky", "PROVIDER_UNAVAILABLE", calls)], ["anthropic", provider("good", undefined, calls)]]));
    const state = fresh();
    const text = await drain(routeEvents(router, router.plan(cat.resolve("a")!, []), request, state, { signal: new AbortController().signal, deadline: Date.now() + 1000 }));
    expect(text).toBe("ok");
    expect(calls).toEqual(["flaky:a1", "good:b1"]);
    expect(state.model?.id).toBe("b");
    expect(state.attempts.map((a) => a.reason)).toEqual(["PROVIDER_UNAVAILABLE", "OK"]);
  });

  it("does not fall back on a request the provider rejected", async () => {
    const cat = catalogue();
    const calls: string[] = [];
    const router = new Router(cat, new Map([["openai", provider("flaky", "PROVIDER_REJECTED", calls)], ["anthropic", provider("good", undefined, calls)]]));
    const state = fresh();
    await expect(
      drain(routeEvents(router, router.plan(cat.resolve("a")!, []), request, state, { signal: new AbortController().signal, deadline: Date.now() + 1000 })),
    ).rejects.toMatchObject({ reason: "PROVIDER_REJECTED" });
    expect(calls).toEqual(["flaky:a1"]);
  });

  it("starts no attempt once the deadline has passed", async () => {
    const cat = catalogue();
    const calls: string[] = [];
    const router = new Router(cat, new Map([["openai", provider("flaky", undefined, calls)]]));
    await expect(
      drain(routeEvents(router, [cat.resolve("a")!], request, fresh(), { signal: new AbortController().signal, deadline: Date.now() - 1 })),
    ).rejects.toMatchObject({ reason: "PROVIDER_TIMEOUT" });
    expect(calls).toEqual([]);
  });

  it("plans request fallbacks before configured ones, without repeats", () => {
    const cat = catalogue();
    const router = new Router(cat, new Map());
    expect(router.plan(cat.resolve("alias-a")!, ["b", "a", "unknown"]).map((m) => m.id)).toEqual(["a", "b"]);
  });

  it("orders deployments by weight: the heavier one is first in proportion to its weight", () => {
    const deployments = [dep("x", "light", 1), dep("x", "heavy", 3)];
    let seed = 1;
    const random = () => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;
    let heavyFirst = 0;
    for (let i = 0; i < 4000; i++) if (orderDeployments(deployments, random)[0]?.model === "heavy") heavyFirst++;
    expect(heavyFirst / 4000).toBeGreaterThan(0.7);
    expect(heavyFirst / 4000).toBeLessThan(0.8);
    expect(orderDeployments(deployments, random)).toHaveLength(2);
  });

  it("prices usage in integer nanos, rounding half up", () => {
    const a = catalogue().resolve("a")!;
    // 1 USD / M input, 2 USD / M output: 3 in + 2 out = 3,000 + 4,000 nanos.
    expect(costOf(a, { inputTokens: 3, outputTokens: 2 })).toBe(7000n);
    expect(costOf(a, { inputTokens: 1_000_000, outputTokens: 0 })).toBe(1_000_000_000n);
  });
});

describe("default prices", () => {
  it("takes a well-known upstream model's price from the default table when the catalogue gives none", () => {
    const cat = new Catalogue(
      parseCatalogue({
        models: [
          { id: "fast", contextWindow: 128000, maxOutputTokens: 4096, deployments: [{ provider: "openai", model: "gpt-4o-mini" }] },
          { id: "mine", contextWindow: 8000, maxOutputTokens: 100, deployments: [{ provider: "ollama", model: "my-finetune" }] },
          {
            id: "priced",
            contextWindow: 8000,
            maxOutputTokens: 100,
            price: { inputPerMillion: 9, outputPerMillion: 10 },
            deployments: [{ provider: "openai", model: "gpt-4o-mini" }],
          },
        ],
      }),
    );
    expect(cat.resolve("fast")!.inputPriceNanosPerMillion).toBeGreaterThan(0n);
    expect(cat.resolve("mine")!.inputPriceNanosPerMillion).toBe(0n);
    expect(cat.resolve("priced")!.inputPriceNanosPerMillion).toBe(9_000_000_000n);
  });
});
