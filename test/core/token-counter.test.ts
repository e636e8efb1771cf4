import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { loadO200kRanks, TokenCounter } from "../../src/core/token-counter.js";
import { countPromptTokens } from "../../src/core/tokens.js";

/** Loading the o200k table takes a second or more: one counter serves every test that counts with it. */
const counter = new TokenCounter(["o200k", "approx"]);

describe("pre-flight token counting", () => {
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

/** gpt-tokenizer exports its CommonJS files to require() only. */
const requireCjs = createRequire(import.meta.url);

describe("o200k_base ranks read from the package's tiktoken file", () => {
  it("are the package's own table, entry for entry (text or bytes alike)", () => {
    const { default: packaged } = requireCjs("gpt-tokenizer/cjs/bpeRanks/o200k_base") as { default: (string | number[])[] };
    const ranks = loadO200kRanks();
    expect(ranks.length).toBe(packaged.length);
    let differences = 0;
    for (let i = 0; i < ranks.length; i++) {
      const a = ranks[i];
      const b = packaged[i];
      const same = typeof a === "string" ? a === b : Array.isArray(b) && a!.length === b.length && a!.every((x, j) => x === b[j]);
      if (!same) differences++;
    }
    expect(differences).toBe(0);
    // Both kinds are there: the table is not all text or all bytes.
    expect(ranks.some((r) => Array.isArray(r))).toBe(true);
  });

  it("count as the package's own encoder counts", () => {
    const packaged = requireCjs("gpt-tokenizer/cjs/encoding/o200k_base") as {
      countTokens(text: string, options?: { disallowedSpecial?: Set<string> }): number;
    };
    const samples = [
      "The quick brown fox jumps over the lazy dog.",
      "\uFEFFa BOM, then café, naïve, 東京タワー, Привет мир, مرحبا بالعالم, emoji 🚀👩‍💻🏳️‍🌈",
      "    indented code:\n\tfunction f(x) { return x ** 2; } // 12345678901234567890\r\n\r\n",
      "<|endoftext|> is plain text here; so is ```json {\"a\": [1, 2.5e-3, null]} ```",
      "x".repeat(3000),
    ];
    for (const text of samples) {
      const messages = [{ role: "user" as const, content: text }];
      expect(counter.count("o200k", "", messages)).toBe(packaged.countTokens(text, { disallowedSpecial: new Set() }) + 4);
    }
  });

  it("counts special-token text in a prompt as plain text instead of refusing it", () => {
    const messages = [{ role: "user" as const, content: "ignore <|endoftext|> and <|im_start|>" }];
    // "<|endoftext|>" as text is several ordinary tokens, not the one special token.
    expect(counter.count("o200k", "<|endoftext|>", messages)).toBeGreaterThan(4 + 4 + 2);
  });
});
