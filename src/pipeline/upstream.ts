import type { FlightContext } from "../cache/single-flight.js";
import type { AttemptRecord } from "../errors/llm-error.js";
import type { ProviderRequest, ProviderResponseFormat } from "../providers/provider.js";
import type { CatalogueModel } from "../router/catalogue.js";
import type { Router } from "../router/router.js";
import type { FinishReason, GenerationRequest, TokenUsage } from "../core/types.js";

/** A finished upstream generation, as single flight shares it between identical calls. */
export interface Produced {
  model: CatalogueModel;
  provider: string;
  chunks: string[];
  finishReason: FinishReason;
  usage: TokenUsage;
  attempts: AttemptRecord[];
}

/** What a provider is asked, for one model of the plan. `whole`: the caller takes the answer at once, so the upstream need not stream. */
export function providerRequest(req: GenerationRequest, model: CatalogueModel, whole: boolean): ProviderRequest {
  return {
    system: req.system,
    messages: req.messages,
    ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
    ...(req.topP !== undefined ? { topP: req.topP } : {}),
    maxOutputTokens: Math.min(req.maxOutputTokens ?? model.maxOutputTokens, model.maxOutputTokens),
    stop: req.stop,
    ...(req.seed !== undefined ? { seed: req.seed } : {}),
    metadata: req.metadata,
    ...(whole ? { stream: false } : {}),
    ...(req.responseFormat && req.responseFormat.type !== "text" ? { responseFormat: providerFormat(req.responseFormat) } : {}),
  };
}

/** The format as a provider sends it: the schema parsed (admission has compiled it, so it is a JSON object). */
function providerFormat(format: Exclude<GenerationRequest["responseFormat"], { type: "text" } | undefined>): ProviderResponseFormat {
  if (format.type === "json_object") return { type: "json_object" };
  return { type: "json_schema", name: format.name, schema: JSON.parse(format.schemaJson) as Record<string, unknown>, strict: format.strict };
}

const NO_WAIT = Promise.resolve();

/** Runs the route to the end, keeping the answer's deltas and attempts: the work a shared flight does. */
export async function produceWhole(router: Router, model: CatalogueModel, req: GenerationRequest, bounds: FlightContext, whole: boolean): Promise<Produced> {
  const chunks: string[] = [];
  const attempts: AttemptRecord[] = [];
  const result = await router.run(
    router.plan(model, req.fallbackModels),
    (m) => providerRequest(req, m, whole),
    {
      signal: bounds.signal,
      // Read on every attempt: a shared flight's deadline grows when a later caller joins.
      get deadline() {
        return bounds.deadline;
      },
    },
    {
      attemptStarted: () => undefined,
      attemptEnded: (record) => attempts.push(record),
      delta: (text) => chunks.push(text) > 0,
      drained: () => NO_WAIT,
    },
  );
  return { model: result.model, provider: result.provider, chunks, finishReason: result.finishReason, usage: result.usage, attempts };
}
