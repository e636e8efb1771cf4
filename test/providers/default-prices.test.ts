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
    expect(price("fast")).toEqual(OPENAI_PRICES["gpt-4o-mini"]);
    expect(price("routed")).toEqual(ANTHROPIC_PRICES["claude-sonnet-4-5"]);
    expect(price("priced")).toEqual({ inputPerMillion: 9, outputPerMillion: 10 });
    expect(price("mine")).toBeUndefined();
  });
});
