/** Anthropic's usage counts: message_start's, then message_delta's cumulative update. */
import { describe, expect, it } from "vitest";
import { anthropicUsage } from "./anthropic-usage.js";

describe("anthropicUsage", () => {
  const start = anthropicUsage({ input_tokens: 10, cache_read_input_tokens: 200, cache_creation_input_tokens: 30, output_tokens: 1 });

  it("counts cache reads and writes as input, and keeps them as its parts", () => {
    expect(start).toEqual({ inputTokens: 240, outputTokens: 1, cachedInputTokens: 200, cacheWriteInputTokens: 30 });
  });

  it("keeps the input counts a message_delta leaves null, and takes the ones it repeats", () => {
    const delta = { input_tokens: null, cache_read_input_tokens: null, cache_creation_input_tokens: null, output_tokens: 50 };
    expect(anthropicUsage(delta, start)).toEqual({ inputTokens: 240, outputTokens: 50, cachedInputTokens: 200, cacheWriteInputTokens: 30 });
    const updated = { ...delta, input_tokens: 12, cache_read_input_tokens: 200, output_tokens_details: { thinking_tokens: 20 } };
    expect(anthropicUsage(updated, start)).toEqual({
      inputTokens: 242,
      outputTokens: 50,
      cachedInputTokens: 200,
      cacheWriteInputTokens: 30,
      reasoningTokens: 20,
    });
  });

  it("leaves out a detail that is 0 or absent", () => {
    expect(anthropicUsage({ input_tokens: 5, cache_read_input_tokens: 0, cache_creation_input_tokens: null, output_tokens: 3 })).toEqual({
      inputTokens: 5,
      outputTokens: 3,
    });
  });
});
