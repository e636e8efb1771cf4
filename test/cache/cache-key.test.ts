import { describe, expect, it } from "vitest";
import { CACHE_KEY_PREFIX, cacheKey } from "../../src/cache/cache-key.js";
import type { GenerationRequest } from "../../src/core/types.js";

function request(overrides: Partial<GenerationRequest> = {}): GenerationRequest {
  return {
    model: "fast",
    messages: [
      { role: "user", content: "What is 2 + 2?" },
      { role: "assistant", content: "4" },
      { role: "user", content: "And 3 + 3?" },
    ],
    system: "Answer briefly.",
    temperature: 0,
    topP: 0.9,
    maxOutputTokens: 64,
    stop: ["\n\n"],
    seed: 7n,
    fallbackModels: [],
    cache: { mode: "default", ttlSeconds: 0 },
    metadata: {},
    idempotencyKey: "",
    ...overrides,
  };
}

const key = (req: GenerationRequest, tenant = "acme", model = "sim/echo-1") => cacheKey({ tenant, model, request: req });

describe("cacheKey", () => {
  it("is a versioned SHA-256 that is stable for the same input", () => {
    const k = key(request());
    expect(k).toMatch(new RegExp(`^${CACHE_KEY_PREFIX}[A-Za-z0-9_-]{43}$`));
    expect(key(request())).toBe(k);
  });

  it("never lets two tenants share an entry", () => {
    expect(key(request(), "acme")).not.toBe(key(request(), "globex"));
  });

  it("changes with every field that can change the output", () => {
    const base = key(request());
    const variants: Record<string, string> = {
      model: key(request(), "acme", "sim/echo-2"),
      system: key(request({ system: "Answer at length." })),
      "message role": key(request({ messages: [{ role: "assistant", content: "What is 2 + 2?" }] })),
      "message content": key(request({ messages: [{ role: "user", content: "What is 2 + 3?" }] })),
      "one more message": key(request({ messages: [...request().messages, { role: "assistant", content: "6" }] })),
      "message order": key(request({ messages: [...request().messages].reverse() })),
      "temperature 0 -> 0.5": key(request({ temperature: 0.5 })),
      "temperature unset": key(request({ temperature: undefined })),
      "top_p": key(request({ topP: 0.5 })),
      "top_p unset": key(request({ topP: undefined })),
      max_output_tokens: key(request({ maxOutputTokens: 65 })),
      "max_output_tokens unset": key(request({ maxOutputTokens: undefined })),
      stop: key(request({ stop: ["\n\n", "END"] })),
      "no stop": key(request({ stop: [] })),
      seed: key(request({ seed: 8n })),
      "seed unset": key(request({ seed: undefined })),
    };
    for (const [field, variant] of Object.entries(variants)) {
      expect(variant, field).not.toBe(base);
    }
    expect(new Set(Object.values(variants)).size, "every variant differs from every other").toBe(Object.keys(variants).length);
  });

  it("ignores what cannot change the output: metadata, cache policy, idempotency key, fallbacks, the alias asked for", () => {
    const base = key(request());
    expect(key(request({ metadata: { team: "search", trace: "abc" } }))).toBe(base);
    expect(key(request({ cache: { mode: "force", ttlSeconds: 60 } }))).toBe(base);
    expect(key(request({ idempotencyKey: "retry-123" }))).toBe(base);
    expect(key(request({ fallbackModels: ["sim/echo-2"] }))).toBe(base);
    // The key takes the resolved model, so an alias and its target share entries.
    expect(key(request({ model: "sim/echo-1" }))).toBe(base);
  });

  it("cannot be made to collide by moving text between fields", () => {
    const pairs: [string, string, string][] = [
      ["split messages", key(request({ messages: [{ role: "user", content: "ab" }] })), key(request({ messages: [{ role: "user", content: "a" }, { role: "user", content: "b" }] }))],
      ["system into message", key(request({ system: "ab", messages: [{ role: "user", content: "" }] })), key(request({ system: "a", messages: [{ role: "user", content: "b" }] }))],
      ["stop sequences", key(request({ stop: ["a,b"] })), key(request({ stop: ["a", "b"] }))],
      ["tenant into model", key(request(), "a:b", "c"), key(request(), "a", "b:c")],
      ["quote in content", key(request({ messages: [{ role: "user", content: 'a","b' }] })), key(request({ messages: [{ role: "user", content: "a" }, { role: "user", content: "b" }] }))],
      ["seed 0 vs unset", key(request({ seed: 0n })), key(request({ seed: undefined }))],
      ["temperature 0 vs unset", key(request({ temperature: 0 })), key(request({ temperature: undefined }))],
    ];
    for (const [name, a, b] of pairs) expect(a, name).not.toBe(b);
  });

  it("covers the response format, but not its pass-through flag; text keys as unset", () => {
    const schema = (schemaJson: string, passThroughMismatch = false) => ({ type: "json_schema" as const, name: "r", schemaJson, strict: false, passThroughMismatch });
    const plain = key(request());
    expect(key(request({ responseFormat: { type: "text" } }))).toBe(plain);
    const obj = key(request({ responseFormat: { type: "json_object", passThroughMismatch: false } }));
    const a = key(request({ responseFormat: schema('{"type":"object"}') }));
    const b = key(request({ responseFormat: schema('{"type":"array"}') }));
    const strict = key(request({ responseFormat: { ...schema('{"type":"object"}'), strict: true } }));
    expect(new Set([plain, obj, a, b, strict]).size).toBe(5);
    expect(key(request({ responseFormat: schema('{"type":"object"}', true) }))).toBe(a);
  });
});
