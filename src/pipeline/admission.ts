import { LlmError } from "../errors/llm-error.js";
import type { Catalogue, CatalogueModel } from "../router/catalogue.js";
import { isModelAllowed } from "../core/model-access.js";
import type { TokenCounter } from "../core/token-counter.js";
import type { EmbedRequest, GenerationRequest, Principal } from "../core/types.js";
import { validateEmbedRequest, validateRequest } from "../core/validate.js";
import { outputCheck, type OutputCheck } from "../structured/output-check.js";
import { OutputSchemas, SchemaError, type CompiledSchema } from "../structured/output-schemas.js";

/** A request admitted: its model, and the prompt's size as the model's tokenizer counts it. */
export interface Admitted {
  model: CatalogueModel;
  inputTokens: number;
  /** How the final answer is checked (a JSON response format); absent for text. */
  output?: OutputCheck;
}

/** OpenAI's rule for a json_schema name, which the others do not mind. */
const SCHEMA_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * The first stage of a call, and a pure one: the request is well formed; its model and fallbacks
 * exist and this key may use them; the output limit and the prompt fit the model. Throws the
 * taxonomy's error for the first thing that is wrong.
 */
export class Admission {
  constructor(
    private readonly catalogue: Catalogue,
    private readonly tokens: TokenCounter,
    private readonly schemas: OutputSchemas = new OutputSchemas(),
  ) {}

  admit(req: GenerationRequest, principal: Principal): Admitted {
    validateRequest(req);
    const output = this.outputCheck(req);
    const model = this.resolve(req.model, principal, "model");
    for (const [i, name] of req.fallbackModels.entries()) this.resolve(name, principal, `fallback_models[${i}]`);
    if (req.maxOutputTokens !== undefined && req.maxOutputTokens > model.maxOutputTokens) {
      throw new LlmError("INVALID_REQUEST", `max_output_tokens must be at most ${model.maxOutputTokens} for ${model.id}`, {
        fieldViolations: [{ field: "max_output_tokens", description: `must be at most ${model.maxOutputTokens} for ${model.id}` }],
      });
    }
    const inputTokens = this.tokens.count(model.tokenizer, req.system, req.messages);
    const reserved = req.maxOutputTokens ?? 1;
    if (inputTokens + reserved > model.contextWindow) {
      throw new LlmError(
        "CONTEXT_LENGTH_EXCEEDED",
        `the prompt has ${inputTokens} tokens; with ${reserved} output tokens it exceeds ${model.id}'s context window of ${model.contextWindow}`,
        {
          metadata: { model: model.id, input_tokens: String(inputTokens), context_window: String(model.contextWindow) },
          fieldViolations: [
            { field: "messages", description: `${inputTokens} input tokens + ${reserved} output tokens > ${model.contextWindow}` },
          ],
        },
      );
    }
    return { model, inputTokens, ...(output ? { output } : {}) };
  }

  /** The response format's check; a json_schema's schema is compiled here (once per distinct schema), so a bad one never reaches an upstream. */
  private outputCheck(req: GenerationRequest): OutputCheck | undefined {
    const format = req.responseFormat;
    let compiled: CompiledSchema | undefined;
    if (format?.type === "json_schema") {
      if (!SCHEMA_NAME.test(format.name)) {
        throw new LlmError("INVALID_REQUEST", "response_format.json_schema.name must be 1 to 64 letters, digits, _ or -", {
          fieldViolations: [{ field: "response_format.json_schema.name", description: "must be 1 to 64 letters, digits, _ or -" }],
        });
      }
      try {
        compiled = this.schemas.get(format.schemaJson);
      } catch (err) {
        if (!(err instanceof SchemaError)) throw err;
        throw new LlmError("INVALID_REQUEST", `response_format.json_schema.schema_json ${err.message}`, {
          fieldViolations: [{ field: "response_format.json_schema.schema_json", description: err.message }],
        });
      }
    }
    return outputCheck(format, compiled);
  }

  /**
   * An Embed request: well formed; its model and fallbacks exist, this key may use them, and
   * each has the "embeddings" capability (a chat model is refused here, before any upstream
   * call); each input fits the model's context window.
   */
  admitEmbed(req: EmbedRequest, principal: Principal): Admitted {
    validateEmbedRequest(req);
    const model = this.resolve(req.model, principal, "model");
    embeddingModel(model, "model");
    for (const [i, name] of req.fallbackModels.entries()) embeddingModel(this.resolve(name, principal, `fallback_models[${i}]`), `fallback_models[${i}]`);
    let inputTokens = 0;
    for (const [i, text] of req.inputs.entries()) {
      const tokens = this.tokens.countTexts(model.tokenizer, [text]);
      if (tokens > model.contextWindow) {
        throw new LlmError("CONTEXT_LENGTH_EXCEEDED", `inputs[${i}] has ${tokens} tokens, more than ${model.id}'s context window of ${model.contextWindow}`, {
          metadata: { model: model.id, input_tokens: String(tokens), context_window: String(model.contextWindow) },
          fieldViolations: [{ field: `inputs[${i}]`, description: `${tokens} tokens > ${model.contextWindow}` }],
        });
      }
      inputTokens += tokens;
    }
    return { model, inputTokens };
  }

  private resolve(name: string, principal: Principal, field: string): CatalogueModel {
    const model = this.catalogue.resolve(name);
    if (!model) {
      throw new LlmError("MODEL_NOT_FOUND", `model "${name}" is not in the catalogue; ListModels lists them`, {
        metadata: { model: name },
        ...(field === "model" ? {} : { fieldViolations: [{ field, description: "unknown model" }] }),
      });
    }
    if (!isModelAllowed(principal.allowedModels, model.id, model.aliases)) {
      throw new LlmError("MODEL_NOT_ALLOWED", `this API key may not use model "${model.id}"`, {
        metadata: { model: model.id },
      });
    }
    return model;
  }
}

/** The capability a model must declare in the catalogue to serve Embed. */
export const EMBEDDINGS = "embeddings";

function embeddingModel(model: CatalogueModel, field: string): void {
  if (model.capabilities.includes(EMBEDDINGS)) return;
  throw new LlmError("INVALID_REQUEST", `model "${model.id}" has no "${EMBEDDINGS}" capability; ListModels shows each model's capabilities`, {
    metadata: { model: model.id, capability: EMBEDDINGS },
    fieldViolations: [{ field, description: `${model.id} does not serve embeddings` }],
  });
}
