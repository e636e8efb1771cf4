/** Pricing a usage: each part of the input at its own rate, reasoning as output, integer nanos. */
import { describe, expect, it } from "vitest";
import { parseCatalogue } from "../../src/config.js";
import { Catalogue, costOf, type CatalogueModel } from "../../src/router/catalogue.js";

function model(provider: string, upstream: string, price?: object): CatalogueModel {
  const catalogue = new Catalogue(
    parseCatalogue({
      models: [{ id: "m", contextWindow: 1_000_000, maxOutputTokens: 1000, deployments: [{ provider, model: upstream }], ...(price ? { price } : {}) }],
    }),
  );
  return catalogue.resolve("m")!;
}

describe("costOf", () => {
  // 2 USD / M input, 0.5 cached, 2.5 cache write, 8 output: nanos per token 2000, 500, 2500, 8000.
  const m = model("anthropic", "x", { inputPerMillion: 2, outputPerMillion: 8, cachedInputPerMillion: 0.5, cacheWriteInputPerMillion: 2.5 });

  it("bills cached input at the cached price and cache writes at the write price, the rest of the input at the input price", () => {
    // 1000 in, of which 600 read from the cache and 100 written to it: 300 × 2000 + 600 × 500 + 100 × 2500 = 1,150,000; 10 out × 8000.
    expect(costOf(m, { inputTokens: 1000, outputTokens: 10, cachedInputTokens: 600, cacheWriteInputTokens: 100 })).toBe(1_230_000n);
    // Without the detail, every input token is input: 1000 × 2000 + 80,000.
    expect(costOf(m, { inputTokens: 1000, outputTokens: 10 })).toBe(2_080_000n);
  });

  it("bills reasoning tokens once, as the output they are part of", () => {
    expect(costOf(m, { inputTokens: 0, outputTokens: 100, reasoningTokens: 80 })).toBe(costOf(m, { inputTokens: 0, outputTokens: 100 }));
    expect(costOf(m, { inputTokens: 0, outputTokens: 100, reasoningTokens: 80 })).toBe(800_000n);
  });

  it("never bills more cached tokens than there is input, nor a negative rest", () => {
    // A provider reporting more cached than input: all input is cached, the write gets nothing left.
    expect(costOf(m, { inputTokens: 10, outputTokens: 0, cachedInputTokens: 50, cacheWriteInputTokens: 5 })).toBe(5_000n);
    expect(costOf(m, { inputTokens: 10, outputTokens: 0, cachedInputTokens: 4, cacheWriteInputTokens: 50 })).toBe(4n * 500n + 6n * 2500n);
  });

  it("rounds the total half up to whole nanos, in integers", () => {
    // 2 nanos per million input tokens, 1 nano per million cached: half a nano rounds up, less rounds down.
    const cheap = model("openai", "x", { inputPerMillion: 0.000000002, outputPerMillion: 0, cachedInputPerMillion: 0.000000001 });
    expect(costOf(cheap, { inputTokens: 500_000, outputTokens: 0, cachedInputTokens: 500_000 })).toBe(1n);
    expect(costOf(cheap, { inputTokens: 499_999, outputTokens: 0, cachedInputTokens: 499_999 })).toBe(0n);
    expect(costOf(cheap, { inputTokens: 500_000, outputTokens: 0, cachedInputTokens: 250_000 })).toBe(1n);
  });

  it("prices OpenAI cached input at the listed family's discount, and Anthropic cache reads and writes at 0.1 and 1.25 times input", () => {
    const usage = { inputTokens: 1_000_000, outputTokens: 0, cachedInputTokens: 1_000_000 };
    expect(costOf(model("openai", "gpt-4o"), usage)).toBe(1_250_000_000n); // 2.50 → 1.25
    expect(costOf(model("openai", "gpt-4.1-mini"), usage)).toBe(100_000_000n); // 0.40 → 0.10
    expect(costOf(model("openai", "gpt-5"), usage)).toBe(125_000_000n); // 1.25 → 0.125
    expect(costOf(model("anthropic", "claude-sonnet-4-5"), usage)).toBe(300_000_000n); // 3 → 0.30
    const writes = { inputTokens: 1_000_000, outputTokens: 0, cacheWriteInputTokens: 1_000_000 };
    expect(costOf(model("anthropic", "claude-sonnet-4-5"), writes)).toBe(3_750_000_000n); // 3 → 3.75
  });
});
