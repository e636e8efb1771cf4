import { describe, expect, it } from "vitest";
import { LlmError } from "../../src/errors/llm-error.js";
import { isTimestampInRange, storableText, unstorableText, validateRequest } from "../../src/core/validate.js";
import type { GenerationRequest } from "../../src/core/types.js";

function request(extra: Partial<GenerationRequest> = {}): GenerationRequest {
  return {
    model: "sim/echo",
    messages: [{ role: "user", content: "hi" }],
    system: "",
    stop: [],
    fallbackModels: [],
    cache: { mode: "default", ttlSeconds: 0 },
    metadata: {},
    idempotencyKey: "",
    ...extra,
  };
}

function violations(req: GenerationRequest): string[] {
  try {
    validateRequest(req);
    return [];
  } catch (err) {
    if (!(err instanceof LlmError)) throw err;
    return err.fieldViolations.map((v) => v.field);
  }
}

describe("text the ledger cannot store", () => {
  it("finds NUL characters and unpaired surrogates, and nothing in well-formed text", () => {
    expect(unstorableText("a\u0000b")).toMatch(/NUL/);
    expect(unstorableText("a\ud800")).toMatch(/surrogate/);
    expect(unstorableText("\udc00a")).toMatch(/surrogate/);
    expect(unstorableText("a\ud83d\ude00b émoji ✓")).toBeUndefined();
    expect(unstorableText("")).toBeUndefined();
  });

  it("replaces what cannot be stored with U+FFFD and leaves the rest", () => {
    expect(storableText("a\u0000b\ud800c\udc00\ud83d\ude00")).toBe("a\uFFFDb\uFFFDc\uFFFD\ud83d\ude00");
    expect(storableText("plain")).toBe("plain");
  });

  it("is refused in every caller text that reaches the ledger, each field named", () => {
    expect(
      violations(
        request({
          model: "m\u0000",
          fallbackModels: ["f\ud800"],
          metadata: { ok: "fine", "k\u0000": "v", team: "\udc00" },
          idempotencyKey: "i\u0000",
        }),
      ),
    ).toEqual(["model", "fallback_models[0]", 'metadata["k\\u0000"]', 'metadata["team"]', "idempotency_key"]);
    expect(violations(request({ metadata: { team: "a\ud83d\ude00" } }))).toEqual([]);
  });
});

describe("timestamps", () => {
  it("accepts google.protobuf.Timestamp's range and nothing past it", () => {
    expect(isTimestampInRange(new Date("0001-01-01T00:00:00Z"))).toBe(true);
    expect(isTimestampInRange(new Date("9999-12-31T23:59:59.999Z"))).toBe(true);
    expect(isTimestampInRange(new Date("+010000-01-01T00:00:00Z"))).toBe(false);
    expect(isTimestampInRange(new Date("-000001-12-31T23:59:59Z"))).toBe(false);
    expect(isTimestampInRange(new Date(Number.NaN))).toBe(false);
  });
});
