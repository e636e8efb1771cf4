import { describe, expect, it } from "vitest";
import { parseCatalogue } from "../../src/config.js";
import { TokenCounter } from "../../src/core/token-counter.js";
import type { GenerationRequest, Principal } from "../../src/core/types.js";
import { Admission } from "../../src/pipeline/admission.js";
import { Catalogue } from "../../src/router/catalogue.js";

const catalogue = new Catalogue(
  parseCatalogue({
    models: [
      {
        id: "small",
        aliases: ["tiny"],
        contextWindow: 40,
        maxOutputTokens: 8,
        price: { inputPerMillion: 1, outputPerMillion: 2 },
        tokenizer: "approx",
        deployments: [{ provider: "sim", model: "echo" }],
      },
      { id: "other", contextWindow: 1000, maxOutputTokens: 100, price: { inputPerMillion: 1, outputPerMillion: 2 }, tokenizer: "approx", deployments: [{ provider: "sim", model: "echo" }] },
    ],
  }),
);
const admission = new Admission(catalogue, new TokenCounter([]));
const principal = (allowedModels?: string[]): Principal => ({ keyId: "k", name: "k", tenant: "t", role: "user", ...(allowedModels ? { allowedModels } : {}) });
const request = (over: Partial<GenerationRequest> = {}): GenerationRequest => ({
  model: "small",
  system: "",
  messages: [{ role: "user", content: "hello there" }],
  stop: [],
  metadata: {},
  fallbackModels: [],
  idempotencyKey: "",
  cache: { mode: "default", ttlSeconds: 0 },
  ...over,
});

describe("admission, in memory", () => {
  it("resolves an alias to its model and counts the prompt", () => {
    const admitted = admission.admit(request({ model: "tiny" }), principal());
    expect(admitted.model.id).toBe("small");
    expect(admitted.inputTokens).toBeGreaterThan(0);
  });

  it("refuses an unknown model, and names the field of an unknown fallback", () => {
    expect(() => admission.admit(request({ model: "nope" }), principal())).toThrow(expect.objectContaining({ reason: "MODEL_NOT_FOUND" }));
    expect(() => admission.admit(request({ fallbackModels: ["other", "nope"] }), principal())).toThrow(
      expect.objectContaining({ reason: "MODEL_NOT_FOUND", fieldViolations: [{ field: "fallback_models[1]", description: "unknown model" }] }),
    );
  });

  it("refuses a model, or a fallback, the key may not use", () => {
    expect(() => admission.admit(request(), principal(["other"]))).toThrow(expect.objectContaining({ reason: "MODEL_NOT_ALLOWED" }));
    expect(() => admission.admit(request({ fallbackModels: ["other"] }), principal(["small"]))).toThrow(expect.objectContaining({ reason: "MODEL_NOT_ALLOWED" }));
  });

  it("refuses an output limit above the model's and a prompt that does not fit its context window", () => {
    expect(() => admission.admit(request({ maxOutputTokens: 9 }), principal())).toThrow(
      expect.objectContaining({ reason: "INVALID_REQUEST", fieldViolations: [expect.objectContaining({ field: "max_output_tokens" })] }),
    );
    const long = "word ".repeat(200);
    expect(() => admission.admit(request({ messages: [{ role: "user", content: long }] }), principal())).toThrow(
      expect.objectContaining({ reason: "CONTEXT_LENGTH_EXCEEDED" }),
    );
  });

  it("validates the request before anything else", () => {
    expect(() => admission.admit(request({ model: "" }), principal())).toThrow(expect.objectContaining({ reason: "INVALID_REQUEST" }));
  });

  it("refuses a JSON schema it cannot use, naming the field, and compiles a good one once", () => {
    const format = (schemaJson: string, name = "answer") => ({ type: "json_schema" as const, name, schemaJson, strict: false, passThroughMismatch: false });
    expect(() => admission.admit(request({ responseFormat: format('{"type": "nope"}') }), principal())).toThrow(
      expect.objectContaining({
        reason: "INVALID_REQUEST",
        fieldViolations: [{ field: "response_format.json_schema.schema_json", description: expect.stringMatching(/^is not a valid JSON Schema/) }],
      }),
    );
    expect(() => admission.admit(request({ responseFormat: format("not json") }), principal())).toThrow(
      expect.objectContaining({ fieldViolations: [{ field: "response_format.json_schema.schema_json", description: "must be JSON text" }] }),
    );
    expect(() => admission.admit(request({ responseFormat: format('{"type": "object"}', "bad name!") }), principal())).toThrow(
      expect.objectContaining({ fieldViolations: [{ field: "response_format.json_schema.name", description: expect.any(String) }] }),
    );
    const admitted = admission.admit(request({ responseFormat: format('{"type": "object"}') }), principal());
    expect(admitted.output?.violations('{"a": 1}')).toEqual([]);
    expect(admitted.output?.violations("[]")).toEqual([{ field: "", description: "must be object" }]);
    expect(admission.admit(request(), principal()).output).toBeUndefined();
  });
});
