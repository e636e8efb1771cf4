import type { CacheDefaults } from "../cache/cache-policy.js";
import { decideCache } from "../cache/cache-policy.js";
import { embedCacheKey } from "../cache/embed-cache-key.js";
import type { CachedGeneration, ResponseCache } from "../cache/response-cache.js";
import { fromStoredVector, toStoredVector } from "../cache/stored-vectors.js";
import type { CallContext, EmbedRequest, EmbedResult, UsageSink } from "../core/types.js";
import { LlmError, asLlmError } from "../errors/llm-error.js";
import type { Limiter, Ticket } from "../limits/limiter.js";
import type { EmbedProviderRequest } from "../providers/provider.js";
import type { Catalogue } from "../router/catalogue.js";
import type { Router, UpstreamCall } from "../router/router.js";
import { EMBEDDINGS_OPERATION, GEN_AI, embedAttemptAttributes } from "../telemetry/gen-ai.js";
import type { Tracing } from "../telemetry/tracing.js";
import { EMBEDDINGS, type Admission } from "./admission.js";
import { CallObserver, type EventSink, type FinishSummary } from "./call-observer.js";
import { reserveLimits } from "./limits-stage.js";

export interface EmbedDeps {
  catalogue: Catalogue;
  router: Router;
  usageSink: UsageSink;
  limiter?: Limiter;
  cache?: ResponseCache;
  cacheDefaults: CacheDefaults;
  onFinish?: (summary: FinishSummary) => void;
  tracing: Tracing;
  now: () => number;
}

const NO_WAIT = Promise.resolve();
/** An Embed call has no stream: the observer's events go nowhere, the result is returned. */
const DISCARD: EventSink = { push: () => true, drained: () => NO_WAIT };

/**
 * The attempt of an Embed call: the provider's `embed`, its vectors handed to `onVectors`. A
 * provider without one (Anthropic) fails at once with CAPABILITY_NOT_SUPPORTED naming it, before
 * any upstream call; the router then tries the next deployment, if any.
 */
function embedCall(onVectors: (vectors: Float32Array[]) => void): UpstreamCall<EmbedProviderRequest> {
  return {
    spanName: (model) => `${EMBEDDINGS_OPERATION} ${model}`,
    attributes: (provider, model, request) => embedAttemptAttributes(provider, model, request),
    async invoke(provider, deployment, request, options) {
      if (provider.embed === undefined) {
        throw new LlmError("CAPABILITY_NOT_SUPPORTED", `provider "${provider.name}" has no embeddings API (deployment ${deployment.model})`, {
          metadata: { provider: provider.name, capability: EMBEDDINGS },
        });
      }
      const done = await provider.embed(deployment, request, options);
      onVectors(done.vectors);
      return { finishReason: "stop", usage: done.usage };
    },
  };
}

/**
 * One Embed call through the stages a generation takes: admission (the model has the embeddings
 * capability; inputs counted with its tokenizer), limits and budget (input tokens, output 0),
 * the response cache (embeddings are deterministic: the default mode reads and writes it), the
 * router (attempts, retries, breakers, fallbacks, deadline), and the observer, which writes the
 * ledger row, the span's attributes and the access-log summary. No single flight and no
 * idempotency key: an Embed request has none.
 */
export async function runEmbed(deps: EmbedDeps, admission: Admission, req: EmbedRequest, ctx: CallContext): Promise<EmbedResult> {
  const { tracing } = deps;
  const call = new CallObserver(
    { catalogue: deps.catalogue, usageSink: deps.usageSink, tracing, now: deps.now, ...(deps.onFinish ? { onFinish: deps.onFinish } : {}) },
    req,
    ctx,
    DISCARD,
    EMBEDDINGS_OPERATION,
  );
  let failure: LlmError | undefined;
  let ticket: Ticket | undefined;
  const admissionSpan = tracing.startSpan("admission");
  try {
    const { model, inputTokens } = admission.admitEmbed(req, ctx.principal);
    call.admitted(model, inputTokens);
    admissionSpan.setAttributes({ [GEN_AI.requestModel]: model.id, "llm.input_tokens_estimate": inputTokens });
    ticket = await tracing.bind(admissionSpan, () => reserveLimits(deps.limiter, tracing, ctx.principal, model, { maxOutputTokens: 0 }, inputTokens));
    tracing.end(admissionSpan);

    // Vectors depend on the text alone: every embedding is as "deterministic" as a temperature-0 call.
    const policy = decideCache({ cache: req.cache, temperature: 0 }, deps.cacheDefaults);
    const cache = deps.cache;
    const key = embedCacheKey(ctx.principal.tenant, model.id, req);
    if (policy.read && cache) {
      const hit = await tracing.inSpan("cache.lookup", {}, async (span) => {
        const found = await cache.get(key);
        const vectors = found?.model === model.id ? found.vectors?.map(fromStoredVector) : undefined;
        const usable = vectors !== undefined && vectors.length === req.inputs.length && vectors.every((v) => v !== undefined);
        span.setAttribute("llm.cache.hit", usable);
        return usable && found ? { found, vectors: vectors as Float32Array[] } : undefined;
      });
      call.cacheLooked(hit !== undefined);
      if (hit) {
        call.finished(hit.found, model, { cached: true });
        return { id: ctx.requestId, model: model.id, provider: hit.found.provider, vectors: hit.vectors, usage: hit.found.usage, costUsdNanos: 0n, cached: true, attempts: 0 };
      }
    }

    let vectors: Float32Array[] = [];
    const request: EmbedProviderRequest = { inputs: req.inputs, ...(req.dimensions !== undefined ? { dimensions: req.dimensions } : {}), metadata: req.metadata };
    const routed = await deps.router.runCall(
      embedCall((v) => (vectors = v)),
      deps.router.plan(model, req.fallbackModels),
      () => request,
      ctx,
      call,
    );
    call.routed(routed);
    if (policy.write && cache) {
      const entry: CachedGeneration = {
        model: routed.model.id,
        provider: routed.provider,
        chunks: [],
        finishReason: "stop",
        usage: routed.usage,
        vectors: vectors.map(toStoredVector),
        createdAt: deps.now(),
      };
      void cache.set(key, entry, policy.ttlMs);
    }
    const done = call.result("", "stop");
    return { id: ctx.requestId, model: routed.model.id, provider: routed.provider, vectors, usage: routed.usage, costUsdNanos: done.costUsdNanos, cached: false, attempts: done.attempts };
  } catch (err) {
    failure = asLlmError(err);
    tracing.end(admissionSpan, failure);
    throw failure;
  } finally {
    tracing.end(admissionSpan);
    if (!call.completed) failure ??= new LlmError("CANCELLED", "the call was cancelled");
    const spent = call.spent(failure);
    await ticket?.settle(spent);
    call.finish(failure);
  }
}
