/** Default prices come from the providers' own lists, and the catalogue gets them when it names none. */
import { describe, expect, it } from "vitest";
import { parseCatalogue } from "../../src/config.js";
import { ANTHROPIC_PRICES } from "../../src/providers/anthropic/anthropic-prices.js";
import { defaultPriceFor } from "../../src/providers/default-prices.js";
import { OPENAI_PRICES } from "../../src/providers/openai/openai-prices.js";

describe("defaultPriceFor", () => {
  it("finds a model in whichever provider's list holds it", () => {
    expect(defaultPriceFor("gpt-4o")).toEqual(OPENAI_PRICES["gpt-4o"]);
    expect(defaultPriceFor("claude-sonnet-4")).toEqual(ANTHROPIC_PRICES["claude-sonnet-4"]);
  });

  it("matches dated snapshots and -latest, ignores a router prefix, and never gives a variant its family's price", () => {
    expect(defaultPriceFor("gpt-4o-2024-08-06")).toEqual(OPENAI_PRICES["gpt-4o"]);
    expect(defaultPriceFor("gpt-3.5-turbo-0125")).toEqual(OPENAI_PRICES["gpt-3.5-turbo"]);
    expect(defaultPriceFor("claude-sonnet-4-20250514")).toEqual(ANTHROPIC_PRICES["claude-sonnet-4"]);
    expect(defaultPriceFor("claude-3-5-haiku-latest")).toEqual(ANTHROPIC_PRICES["claude-3-5-haiku"]);
    expect(defaultPriceFor("anthropic/claude-opus-4-1")).toEqual(ANTHROPIC_PRICES["claude-opus-4-1"]);
    expect(defaultPriceFor("gpt-4o-realtime")).toBeUndefined();
    expect(defaultPriceFor("o1-mini")).toBeUndefined();
    expect(defaultPriceFor("llama3.2")).toBeUndefined();
  });
});

describe("the catalogue's prices", () => {
  const model = (id: string, upstream: string, extra: object = {}) => ({
    id,
    contextWindow: 8000,
    maxOutputTokens: 100,
    deployments: [{ provider: "openai", model: upstream }],
    ...extra,
  });

  it("fills a missing price from the upstream model's default, keeps a given one, and leaves an unknown model without", () => {
    const catalogue = parseCatalogue({
      models: [
        model("fast", "gpt-4o-mini"),
        model("routed", "anthropic/claude-sonnet-4-5"),
        model("priced", "gpt-4o-mini", { price: { inputPerMillion: 9, outputPerMillion: 10 } }),
        model("mine", "my-finetune"),
      ],
    });
    const price = (id: string) => catalogue.models.find((m) => m.id === id)?.price;
    // OpenAI bills no cache writes: a write (never reported) would cost input.
    expect(price("fast")).toEqual({ ...OPENAI_PRICES["gpt-4o-mini"], cacheWriteInputPerMillion: 0.15 });
    expect(price("routed")).toEqual(ANTHROPIC_PRICES["claude-sonnet-4-5"]);
    // A price without cache prices keeps the listed model's discount (gpt-4o-mini: half of input).
    expect(price("priced")).toEqual({ inputPerMillion: 9, outputPerMillion: 10, cachedInputPerMillion: 4.5, cacheWriteInputPerMillion: 9 });
    expect(price("mine")).toBeUndefined();
  });

  it("fills cache prices from the provider's published rates, else at the input price, and keeps the catalogue's own", () => {
    const catalogue = parseCatalogue({
      models: [
        model("claude-next", "claude-future-9", { price: { inputPerMillion: 4, outputPerMillion: 20 } }),
        model("vllm", "my-finetune", { price: { inputPerMillion: 1, outputPerMillion: 2 } }),
        model("own", "gpt-4o", { price: { inputPerMillion: 2, outputPerMillion: 8, cachedInputPerMillion: 0.2, cacheWriteInputPerMillion: 3 } }),
      ].map((m, i) => (i === 0 ? { ...m, deployments: [{ provider: "anthropic", model: "claude-future-9" }] } : m)),
    });
    const price = (id: string) => catalogue.models.find((m) => m.id === id)?.price;
    expect(price("claude-next")).toEqual({ inputPerMillion: 4, outputPerMillion: 20, cachedInputPerMillion: 0.4, cacheWriteInputPerMillion: 5 });
    expect(price("vllm")).toEqual({ inputPerMillion: 1, outputPerMillion: 2, cachedInputPerMillion: 1, cacheWriteInputPerMillion: 1 });
    expect(price("own")).toEqual({ inputPerMillion: 2, outputPerMillion: 8, cachedInputPerMillion: 0.2, cacheWriteInputPerMillion: 3 });
  });

  it("refuses a negative cache price", () => {
    expect(() => parseCatalogue({ models: [model("bad", "gpt-4o", { price: { inputPerMillion: 1, outputPerMillion: 1, cachedInputPerMillion: -1 } })] })).toThrow();
  });
});
