import { describe, expect, it } from "vitest";
import { countWords, generate } from "../../src/simulator/text.js";
import type { ChatRequest } from "../../src/simulator/dialect.js";

function req(over: Partial<ChatRequest> = {}): ChatRequest {
  return {
    model: "m",
    stream: false,
    includeUsage: false,
    maxTokens: undefined,
    stop: [],
    promptTexts: ["be brief", "what is the time"],
    lastUserText: "what is the time",
    ...over,
  };
}

describe("simulator text", () => {
  it("counts words as tokens, whatever the whitespace", () => {
    expect(countWords("")).toBe(0);
    expect(countWords("   ")).toBe(0);
    expect(countWords("one")).toBe(1);
    expect(countWords("  one two\tthree\nfour\u00a0five  ")).toBe(5);
    expect(countWords("naïve café, déjà-vu!")).toBe(3);
  });

  it("is deterministic in the prompt and differs between prompts", () => {
    const a = generate(req(), "lorem", undefined).tokens.join("");
    expect(generate(req(), "lorem", undefined).tokens.join("")).toBe(a);
    expect(generate(req({ promptTexts: ["be brief", "what is the date"] }), "lorem", undefined).tokens.join("")).not.toBe(a);
    expect(generate(req({ model: "other" }), "lorem", undefined).tokens.join("")).not.toBe(a);
  });

  it("keeps the completion's word count equal to its token count, and counts the prompt the same way", () => {
    const c = generate(req(), "lorem", undefined);
    expect(countWords(c.tokens.join(""))).toBe(c.tokens.length);
    expect(c.quoted.map((q) => JSON.parse(q) as string)).toEqual(c.tokens);
    expect(c.promptTokens).toBe(6);
    expect(c.finish).toBe("stop");
  });

  it("gives exactly output-tokens, capped by max tokens with finish length", () => {
    expect(generate(req(), "lorem", 7).tokens).toHaveLength(7);
    const capped = generate(req({ maxTokens: 3 }), "lorem", 7);
    expect(capped.tokens).toHaveLength(3);
    expect(capped.finish).toBe("length");
    expect(capped.tokens[2]).not.toMatch(/\s$/);
    expect(generate(req({ maxTokens: 7 }), "lorem", 7).finish).toBe("stop");
    expect(generate(req(), "lorem", 0)).toMatchObject({ tokens: [], finish: "stop" });
  });

  it("echoes the last user message, cycling it for a longer output", () => {
    expect(generate(req(), "echo", undefined).tokens).toEqual(["what ", "is ", "the ", "time"]);
    expect(generate(req(), "echo", 6).tokens.join("")).toBe("what is the time what is");
    expect(generate(req({ lastUserText: "  " }), "echo", 5).tokens).toHaveLength(5);
  });

  it("cuts before the earliest stop sequence, even one spanning tokens", () => {
    const c = generate(req({ stop: ["time", "is the"] }), "echo", undefined);
    expect(c.tokens.join("")).toBe("what ");
    expect(c.finish).toBe("stop_sequence");
    expect(c.stopSequence).toBe("is the");
    const mid = generate(req({ stop: ["im"] }), "echo", undefined);
    expect(mid.tokens).toEqual(["what ", "is ", "the ", "t"]);
    expect(mid.tokens).toHaveLength(countWords(mid.tokens.join("")));
    expect(JSON.parse(mid.quoted[3] ?? "")).toBe("t");
  });

  it("answers JSON mode with the schema's instance, whatever the text mode; max_tokens cuts it like any answer", () => {
    const schema = { type: "object", properties: { a: { type: "string" }, b: { type: "array", items: { type: "integer" } } }, required: ["a", "b"] };
    const json = generate(req({ jsonFormat: { kind: "json_schema", schema } }), "echo", undefined);
    const value = JSON.parse(json.tokens.join("")) as { a: unknown; b: unknown };
    expect(typeof value.a).toBe("string");
    expect(Array.isArray(value.b)).toBe(true);
    expect(json.quoted).toEqual(json.tokens.map((t) => JSON.stringify(t)));
    const cut = generate(req({ jsonFormat: { kind: "json_schema", schema }, maxTokens: 2 }), "lorem", undefined);
    expect(cut.tokens).toHaveLength(2);
    expect(cut.finish).toBe("length");
    expect(JSON.parse(generate(req({ jsonFormat: { kind: "json_object" } }), "lorem", undefined, undefined, "invalid").tokens.join(""))).toEqual(["not", "an", "object"]);
  });
});
