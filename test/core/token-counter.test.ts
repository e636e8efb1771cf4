import { describe, expect, it } from "vitest";
import { TokenCounter } from "../../src/core/token-counter.js";
import { countPromptTokens } from "../../src/core/tokens.js";

describe("pre-flight token counting", () => {
  const counter = new TokenCounter(["o200k", "approx"]);
  const messages = [{ role: "user" as const, content: "The quick brown fox jumps over the lazy dog." }];

  it("counts with o200k_base for models that use it (10 tokens for this sentence, plus framing)", () => {
    // o200k_base: "The"," quick"," brown"," fox"," jumps"," over"," the"," lazy"," dog","." = 10 tokens.
    expect(counter.count("o200k", "", messages)).toBe(10 + 4);
  });

  it("counts with the stated word approximation for the sim", () => {
    expect(counter.count("approx", "", messages)).toBe(countPromptTokens("", messages));
    expect(counter.count("approx", "be brief", messages)).toBe(countPromptTokens("be brief", messages));
  });

  it("falls back to the approximation when o200k was not loaded", () => {
    const light = new TokenCounter(["approx"]);
    expect(light.count("o200k", "", messages)).toBe(countPromptTokens("", messages));
  });
});
