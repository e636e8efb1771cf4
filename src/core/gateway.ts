import { randomUUID } from "node:crypto";
import type { DeploymentConfig } from "../config.js";
import { LlmError, asLlmError } from "../errors/llm-error.js";
import type { ProviderRequest } from "../providers/provider.js";
import { costOf, type Catalogue, type CatalogueModel } from "../router/catalogue.js";
import type { CircuitStateName } from "../router/circuit-breaker.js";
import type { RouteState, Router } from "../router/router.js";
import type { TokenCounter } from "./token-counter.js";
import type {
  CallContext,
  FinishReason,
  GenerationEvent,
  GenerationRequest,
  GenerationResult,
  Principal,
  TokenUsage,
  UsageReport,
  UsageSink,
  UsageSource,
} from "./types.js";
import { validateRequest } from "./validate.js";

export interface GatewayDeps {
  catalogue: Catalogue;
  router: Router;
  usageSink: UsageSink;
  usageSource: UsageSource;
  tokens: TokenCounter;
  /** Called once per finished request, for the access log. */
  onFinish?: (summary: FinishSummary) => void;
  now?: () => number;
}

export interface FinishSummary {
  requestId: string;
  principal: Principal;
  model: string;
  provider: string;
  status: "ok" | "failed" | "cancelled";
  reason: string | null;
  latencyMs: number;
  attempts: number;
}

export type BatchItemResult = { ok: true; result: GenerationResult } | { ok: false; error: LlmError; requestId: string };

const USAGE_DEFAULT_RANGE_MS = 30 * 24 * 3600 * 1000;
const USAGE_MAX_RANGE_MS = 400 * 24 * 3600 * 1000;

/**
 * The core of the service: admission (validate, resolve, count tokens), the
 * router, and exactly one usage record per request whatever its outcome.
 */
export class Gateway {
  private readonly now: () => number;

  constructor(private readonly deps: GatewayDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** Streams one generation: started, deltas, completed. Errors are thrown as LlmError. */
  async *stream(req: GenerationRequest, ctx: CallContext): AsyncGenerator<GenerationEvent> {
    const startedAt = this.now();
    const state: RouteState = { provider: "", attempts: [], committed: false };
    let usage: TokenUsage = { inputTokens: 0, outputTokens: 0 };
    let firstTokenAt: number | null = null;
    let failure: LlmError | undefined;
    let cost = 0n;
    let completed = false;
    try {
      validateRequest(req);
      const { model, inputTokens } = this.admit(req, ctx.principal);
      usage = { inputTokens, outputTokens: 0 };
      const plan = this.deps.router.plan(model, req.fallbackModels);
      let startedSent = false;
      let finishReason: FinishReason = "unspecified";
      const events = this.deps.router.stream(plan, (m) => this.providerRequest(req, m), state, {
        signal: ctx.signal,
        deadline: ctx.deadline,
      });
      for await (const event of events) {
        if (!startedSent) {
          startedSent = true;
          yield { type: "started", id: ctx.requestId, model: state.model?.id ?? model.id, provider: state.provider };
        }
        if (event.type === "delta") {
          firstTokenAt ??= this.now();
          usage.outputTokens++;
          yield event;
        } else {
          usage = event.usage;
          finishReason = event.finishReason;
        }
      }
      cost = costOf(state.model ?? model, usage.inputTokens, usage.outputTokens);
      completed = true;
      yield {
        type: "completed",
        finishReason,
        usage,
        costUsdNanos: cost,
        cached: false,
        attempts: state.attempts.length,
      };
    } catch (err) {
      failure = asLlmError(err);
      throw failure;
    } finally {
      // A consumer that stops early (client gone) reaches here without an error.
      if (!completed && !failure) failure = new LlmError("CANCELLED", "the call was cancelled");
      if (failure && state.model) cost = costOf(state.model, usage.inputTokens, usage.outputTokens);
      this.finish(req, ctx, state, usage, cost, startedAt, firstTokenAt, failure);
    }
  }

  /** One complete generation. */
  async generate(req: GenerationRequest, ctx: CallContext): Promise<GenerationResult> {
    let text = "";
    let result: GenerationResult | undefined;
    let head: { model: string; provider: string } | undefined;
    for await (const event of this.stream(req, ctx)) {
      if (event.type === "started") head = event;
      else if (event.type === "delta") text += event.text;
      else {
        result = {
          id: ctx.requestId,
          model: head?.model ?? req.model,
          provider: head?.provider ?? "",
          text,
          finishReason: event.finishReason,
          usage: event.usage,
          costUsdNanos: event.costUsdNanos,
          cached: event.cached,
          attempts: event.attempts,
        };
      }
    }
    if (!result) throw new LlmError("INTERNAL", "generation ended without a result");
    return result;
  }

  /**
   * Runs items with bounded concurrency under the call's deadline and signal.
   * Every item gets a result; one failure never fails the batch.
   */
  async batch(items: GenerationRequest[], concurrency: number, ctx: CallContext): Promise<BatchItemResult[]> {
    const results: BatchItemResult[] = new Array(items.length);
    let next = 0;
    const worker = async () => {
      while (next < items.length) {
        const index = next++;
        const item = items[index] as GenerationRequest;
        const requestId = `${ctx.requestId}.${index}`;
        try {
          results[index] = { ok: true, result: await this.generate(item, { ...ctx, requestId }) };
        } catch (err) {
          results[index] = { ok: false, error: asLlmError(err), requestId };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
    return results;
  }

  listModels(): readonly CatalogueModel[] {
    return this.deps.catalogue.models;
  }

  /** The live circuit-breaker state of a deployment. */
  circuitState(deployment: DeploymentConfig): CircuitStateName {
    return this.deps.router.circuitState(deployment);
  }

  async usage(principal: Principal, query: { tenant: string; start?: Date; end?: Date }): Promise<UsageReport> {
    const tenant = query.tenant === "" ? principal.tenant : query.tenant;
    if (tenant !== principal.tenant && principal.role !== "admin") {
      throw new LlmError("TENANT_NOT_ALLOWED", "only an admin key may read another tenant's usage", {
        metadata: { tenant },
      });
    }
    const end = query.end ?? new Date(this.now());
    const start = query.start ?? new Date(end.getTime() - USAGE_DEFAULT_RANGE_MS);
    const violations = [];
    if (start.getTime() >= end.getTime()) violations.push({ field: "start_time", description: "must be before end_time" });
    if (end.getTime() - start.getTime() > USAGE_MAX_RANGE_MS) {
      violations.push({ field: "start_time", description: "the range must be at most 400 days" });
    }
    if (violations.length > 0) {
      throw new LlmError("INVALID_REQUEST", `invalid request: ${violations[0]?.description}`, { fieldViolations: violations });
    }
    return this.deps.usageSource.usage(tenant, start, end);
  }

  /** Resolves the model and checks what depends on it (output limit, context window). */
  private admit(req: GenerationRequest, _principal: Principal): { model: CatalogueModel; inputTokens: number } {
    const model = this.deps.catalogue.resolve(req.model);
    if (!model) {
      throw new LlmError("MODEL_NOT_FOUND", `model "${req.model}" is not in the catalogue; ListModels lists them`, {
        metadata: { model: req.model },
      });
    }
    for (const [i, name] of req.fallbackModels.entries()) {
      if (!this.deps.catalogue.resolve(name)) {
        throw new LlmError("MODEL_NOT_FOUND", `fallback model "${name}" is not in the catalogue`, {
          metadata: { model: name },
          fieldViolations: [{ field: `fallback_models[${i}]`, description: "unknown model" }],
        });
      }
    }
    if (req.maxOutputTokens !== undefined && req.maxOutputTokens > model.maxOutputTokens) {
      throw new LlmError("INVALID_REQUEST", `max_output_tokens must be at most ${model.maxOutputTokens} for ${model.id}`, {
        fieldViolations: [{ field: "max_output_tokens", description: `must be at most ${model.maxOutputTokens} for ${model.id}` }],
      });
    }
    const inputTokens = this.deps.tokens.count(model.tokenizer, req.system, req.messages);
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
    return { model, inputTokens };
  }

  private providerRequest(req: GenerationRequest, model: CatalogueModel): ProviderRequest {
    return {
      system: req.system,
      messages: req.messages,
      ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
      ...(req.topP !== undefined ? { topP: req.topP } : {}),
      maxOutputTokens: Math.min(req.maxOutputTokens ?? model.maxOutputTokens, model.maxOutputTokens),
      stop: req.stop,
      ...(req.seed !== undefined ? { seed: req.seed } : {}),
      metadata: req.metadata,
    };
  }

  private finish(
    req: GenerationRequest,
    ctx: CallContext,
    state: RouteState,
    usage: TokenUsage,
    cost: bigint,
    startedAt: number,
    firstTokenAt: number | null,
    failure: LlmError | undefined,
  ): void {
    const finishedAt = this.now();
    const status = !failure ? "ok" : failure.reason === "CANCELLED" ? "cancelled" : "failed";
    const model = state.model?.id ?? this.deps.catalogue.resolve(req.model)?.id ?? req.model.slice(0, 128);
    this.deps.usageSink.record({
      id: randomUUID(),
      requestId: ctx.requestId,
      keyId: ctx.principal.keyId,
      tenant: ctx.principal.tenant,
      model,
      provider: state.provider,
      status,
      errorReason: failure?.reason ?? null,
      inputTokens: usage.inputTokens,
      outputTokens: usage.outputTokens,
      costUsdNanos: cost,
      cached: false,
      attempts: state.attempts,
      latencyMs: finishedAt - startedAt,
      timeToFirstTokenMs: firstTokenAt === null ? null : firstTokenAt - startedAt,
      startedAt: new Date(startedAt),
      finishedAt: new Date(finishedAt),
      metadata: req.metadata,
    });
    this.deps.onFinish?.({
      requestId: ctx.requestId,
      principal: ctx.principal,
      model,
      provider: state.provider,
      status,
      reason: failure?.reason ?? null,
      latencyMs: finishedAt - startedAt,
      attempts: state.attempts.length,
    });
  }
}
