import { randomUUID } from "node:crypto";
import { cacheKey } from "../cache/cache-key.js";
import { decideCache, type CacheDefaults } from "../cache/cache-policy.js";
import type { Idempotency, IdempotencyLease } from "../cache/idempotency.js";
import type { CachedGeneration, ResponseCache } from "../cache/response-cache.js";
import { SingleFlight, type FlightContext } from "../cache/single-flight.js";
import type { DeploymentConfig } from "../config.js";
import { LlmError, asLlmError, invalidRequest, type AttemptRecord, type FieldViolation } from "../errors/llm-error.js";
import type { LimitSubject, Limiter, Ticket } from "../limits/limiter.js";
import type { ProviderRequest } from "../providers/provider.js";
import { costOf, type Catalogue, type CatalogueModel } from "../router/catalogue.js";
import type { CircuitStateName } from "../router/circuit-breaker.js";
import type { RouteState, Router } from "../router/router.js";
import { CHAT, FIRST_TOKEN_EVENT, GEN_AI } from "../telemetry/gen-ai.js";
import { Tracing } from "../telemetry/tracing.js";
import { isModelAllowed } from "./model-access.js";
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
import { isTimestampInRange, storableText, TIMESTAMP_RANGE, unstorableText, validateRequest } from "./validate.js";

export interface GatewayDeps {
  catalogue: Catalogue;
  router: Router;
  usageSink: UsageSink;
  usageSource: UsageSource;
  tokens: TokenCounter;
  /** Rate limits and budgets; absent means none. */
  limiter?: Limiter;
  /** The response cache; absent means none. */
  cache?: ResponseCache;
  cacheDefaults?: CacheDefaults;
  /** Idempotency keys; absent means they are accepted and ignored. */
  idempotency?: Idempotency;
  /** Called once per finished request, for the access log. */
  onFinish?: (summary: FinishSummary) => void;
  /** Spans for admission, limits, cache lookup, single-flight wait and batch items; attributes on the call's span. */
  tracing?: Tracing;
  now?: () => number;
}

export interface FinishSummary {
  requestId: string;
  /** The caller's x-request-id, when it sent one. */
  clientRequestId?: string;
  principal: Principal;
  model: string;
  provider: string;
  status: "ok" | "failed" | "cancelled";
  reason: string | null;
  cached: boolean;
  latencyMs: number;
  attempts: number;
  /** Whether `model` is a catalogue model id (bounded: fit for a metric label) rather than the name the client sent. */
  catalogued: boolean;
  usage: TokenUsage;
  costUsdNanos: bigint;
  timeToFirstTokenMs: number | null;
  /** The response cache's answer, when it was asked. */
  cacheLookup: "hit" | "miss" | null;
  /** Answered by joining an identical call in flight. */
  joinedFlight: boolean;
  error?: LlmError;
}

export type BatchItemResult = { ok: true; result: GenerationResult } | { ok: false; error: LlmError; requestId: string };

/** A finished upstream generation, as single-flight shares it between identical calls. */
interface Produced {
  model: CatalogueModel;
  provider: string;
  chunks: string[];
  finishReason: FinishReason;
  usage: TokenUsage;
  attempts: AttemptRecord[];
}

/** What one call learns on its way, for its response, its ledger row and its limit settlement. */
interface CallRecord {
  model?: CatalogueModel;
  provider: string;
  usage: TokenUsage;
  cost: bigint;
  cached: boolean;
  attempts: AttemptRecord[];
  firstTokenAt: number | null;
  startedAt: number;
  cacheLookup: "hit" | "miss" | null;
  joinedFlight: boolean;
}

const USAGE_DEFAULT_RANGE_MS = 30 * 24 * 3600 * 1000;
const USAGE_MAX_RANGE_MS = 400 * 24 * 3600 * 1000;
const DEFAULT_CACHE: CacheDefaults = { defaultTtlMs: 3_600_000, maxTtlMs: 86_400_000 };

/**
 * The core of the service. For each call: validate; resolve the model and check
 * the key may use it and the prompt fits; answer a repeated idempotency key
 * from its first result; reserve rate limits and budget; answer from the cache
 * or, for identical calls in flight, from one shared upstream call; otherwise
 * the router. Exactly one usage record per call, whatever its outcome.
 */
export class Gateway {
  private readonly now: () => number;
  private readonly flights = new SingleFlight<Produced>();
  private readonly cacheDefaults: CacheDefaults;
  private readonly tracing: Tracing;

  constructor(private readonly deps: GatewayDeps) {
    this.now = deps.now ?? Date.now;
    this.tracing = deps.tracing ?? Tracing.disabled;
    this.cacheDefaults = deps.cacheDefaults ?? DEFAULT_CACHE;
  }

  /** Calls that joined an identical call in flight instead of reaching the upstream. */
  get singleFlightJoins(): number {
    return this.flights.joins;
  }

  /** Streams one generation: started, deltas, completed. Errors are thrown as LlmError. */
  stream(req: GenerationRequest, ctx: CallContext): AsyncGenerator<GenerationEvent> {
    return this.run(req, ctx, false);
  }

  /** One complete generation; identical cacheable calls in flight share one upstream call. */
  async generate(req: GenerationRequest, ctx: CallContext): Promise<GenerationResult> {
    let text = "";
    let head: { id: string; model: string; provider: string } | undefined;
    let result: GenerationResult | undefined;
    // Consumed to the end (not left at "completed"): the generator's own bookkeeping runs after that event.
    for await (const event of this.run(req, ctx, true)) {
      if (event.type === "started") head = event;
      else if (event.type === "delta") text += event.text;
      else {
        result = {
          // The started event's id: a replayed idempotency key answers with the first call's id.
          id: head?.id ?? ctx.requestId,
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

  /** `unary`: the caller wants the whole answer at once (identical calls may share it). */
  private async *run(req: GenerationRequest, ctx: CallContext, unary: boolean): AsyncGenerator<GenerationEvent> {
    const startedAt = this.now();
    const rec: CallRecord = {
      provider: "",
      usage: { inputTokens: 0, outputTokens: 0 },
      cost: 0n,
      cached: false,
      attempts: [],
      firstTokenAt: null,
      startedAt,
      cacheLookup: null,
      joinedFlight: false,
    };
    let failure: LlmError | undefined;
    let completed = false;
    let ticket: Ticket | undefined;
    let lease: IdempotencyLease | undefined;
    // Admission: validation, model access, token count, idempotency key, limits and budget.
    const admission = this.tracing.startSpan("admission");
    try {
      validateRequest(req);
      const { model, inputTokens } = this.admit(req, ctx.principal);
      rec.model = model;
      rec.usage = { inputTokens, outputTokens: 0 };
      admission.setAttributes({ [GEN_AI.requestModel]: model.id, "llm.input_tokens_estimate": inputTokens });
      // Hashed only when something needs it (an idempotency key, a cacheable request): most calls do not.
      let hashed: string | undefined;
      const requestKey = () => (hashed ??= cacheKey({ tenant: ctx.principal.tenant, model: model.id, request: req }));

      if (req.idempotencyKey !== "" && this.deps.idempotency) {
        const idempotency = this.deps.idempotency;
        const start = await this.tracing.bind(admission, () =>
          this.tracing.inSpan("idempotency", {}, () =>
            idempotency.begin(
              { tenant: ctx.principal.tenant, idempotencyKey: req.idempotencyKey, requestKey: requestKey() },
              { signal: ctx.signal, deadline: ctx.deadline },
            ),
          ),
        );
        if (start.kind === "replay") {
          admission.setAttribute("llm.idempotent_replay", true);
          this.tracing.end(admission);
          yield* this.replayResult(start.result, rec);
          completed = true;
          return;
        }
        lease = start.lease;
      }

      ticket = await this.tracing.bind(admission, () => this.reserve(ctx.principal, model, req, inputTokens));
      this.tracing.end(admission);
      const policy = decideCache(req, this.cacheDefaults);
      const cache = this.deps.cache;
      if (policy.read && cache) {
        const hit = await this.tracing.inSpan("cache.lookup", {}, async (span) => {
          const found = await cache.get(requestKey());
          span.setAttribute("llm.cache.hit", Boolean(found && found.model === model.id));
          return found;
        });
        rec.cacheLookup = hit && hit.model === model.id ? "hit" : "miss";
        if (hit && hit.model === model.id) {
          yield* this.emit(hit, model, rec, ctx, true);
          completed = true;
          await lease?.complete(this.resultOf(ctx, rec, hit.chunks.join(""), hit.finishReason));
          return;
        }
      }

      // A unary caller's answer may come from a non-streamed upstream call, as one delta, unless the
      // cache keeps it: a StreamGenerate answered from the cache later replays the upstream's deltas.
      const whole = unary && !(policy.write && cache);
      let produced: Produced;
      if (unary && policy.write) {
        // The call that starts the flight runs the router inside this span; the others wait in theirs.
        const flight = await this.tracing.inSpan("single_flight", {}, async (span) => {
          const joined = await this.flights.run(requestKey(), (f) => this.collect(model, req, f, whole), {
            signal: ctx.signal,
            deadline: ctx.deadline,
          });
          span.setAttribute("llm.single_flight.joined", joined.shared);
          return joined;
        });
        rec.joinedFlight = flight.shared;
        produced = flight.value;
        if (!flight.shared) rec.attempts = produced.attempts;
        yield* this.emit(this.toCached(produced), produced.model, rec, ctx, flight.shared);
      } else {
        produced = yield* this.streamLive(model, req, rec, ctx, whole);
      }
      completed = true;
      if (policy.write && cache && !rec.cached) {
        void cache.set(requestKey(), this.toCached(produced), policy.ttlMs);
      }
      await lease?.complete(this.resultOf(ctx, rec, produced.chunks.join(""), produced.finishReason));
    } catch (err) {
      failure = asLlmError(err);
      this.tracing.end(admission, failure);
      throw failure;
    } finally {
      this.tracing.end(admission);
      // A consumer that stops early (client gone) reaches here without an error.
      if (!completed && !failure) failure = new LlmError("CANCELLED", "the call was cancelled");
      if (!completed) await lease?.abandon();
      if (failure && rec.model && !rec.cached) {
        // Only a call that reached an upstream can have spent anything: one refused at admission
        // (rate limit, budget, idempotency conflict) or failed fast on open circuits costs nothing.
        const reachedUpstream = [...rec.attempts, ...failure.attempts].some((a) => a.reason !== "CIRCUIT_OPEN");
        rec.cost = reachedUpstream ? costOf(rec.model, rec.usage.inputTokens, rec.usage.outputTokens) : 0n;
      }
      const spent = rec.cached ? { tokens: 0, costUsdNanos: 0n } : { tokens: rec.usage.inputTokens + rec.usage.outputTokens, costUsdNanos: rec.cost };
      await ticket?.settle(spent);
      this.finish(req, ctx, rec, startedAt, failure);
    }
  }

  /**
   * Runs the router: yields each delta's text as it arrives and returns the
   * whole generation. `rec`, when given, follows the route as it goes.
   */
  private async *produce(
    model: CatalogueModel,
    req: GenerationRequest,
    bounds: FlightContext,
    /** The caller takes the whole answer at once: the provider need not stream from the upstream. */
    whole: boolean,
    rec?: CallRecord,
  ): AsyncGenerator<string, Produced> {
    const state: RouteState = { provider: "", attempts: rec?.attempts ?? [], committed: false };
    const plan = this.deps.router.plan(model, req.fallbackModels);
    const chunks: string[] = [];
    let usage: TokenUsage = { inputTokens: rec?.usage.inputTokens ?? 0, outputTokens: 0 };
    let finishReason: FinishReason = "unspecified";
    const events = this.deps.router.stream(plan, (m) => this.providerRequest(req, m, whole), state, {
      signal: bounds.signal,
      // Read on every attempt: a shared flight's deadline grows when a later caller joins.
      get deadline() {
        return bounds.deadline;
      },
    });
    for await (const event of events) {
      if (rec) {
        rec.model = state.model ?? model;
        rec.provider = state.provider;
      }
      if (event.type === "delta") {
        chunks.push(event.text);
        usage.outputTokens++;
        if (rec) rec.usage.outputTokens = usage.outputTokens;
        yield event.text;
      } else {
        usage = event.usage;
        finishReason = event.finishReason;
      }
    }
    return { model: state.model ?? model, provider: state.provider, chunks, finishReason, usage, attempts: state.attempts };
  }

  /** Runs the router to the end without forwarding anything (for a shared flight). */
  private async collect(model: CatalogueModel, req: GenerationRequest, bounds: FlightContext, whole: boolean): Promise<Produced> {
    const production = this.produce(model, req, bounds, whole);
    for (;;) {
      const step = await production.next();
      if (step.done) return step.value;
    }
  }

  /** Forwards a live upstream stream to the client as it arrives. */
  private async *streamLive(
    model: CatalogueModel,
    req: GenerationRequest,
    rec: CallRecord,
    ctx: CallContext,
    whole: boolean,
  ): AsyncGenerator<GenerationEvent, Produced> {
    const production = this.produce(model, req, ctx, whole, rec);
    let startedSent = false;
    let produced: Produced;
    for (;;) {
      const step = await production.next();
      if (step.done) {
        produced = step.value;
        break;
      }
      if (!startedSent) {
        startedSent = true;
        yield { type: "started", id: ctx.requestId, model: (rec.model ?? model).id, provider: rec.provider };
      }
      if (rec.firstTokenAt === null) {
        rec.firstTokenAt = this.now();
        if (this.tracing.recording()) {
          const seconds = (rec.firstTokenAt - rec.startedAt) / 1000;
          this.tracing.annotate({ [GEN_AI.timeToFirstChunk]: seconds });
          this.tracing.event(FIRST_TOKEN_EVENT, { [GEN_AI.timeToFirstChunk]: seconds });
        }
      }
      yield { type: "delta", text: step.value };
    }
    if (!startedSent) yield { type: "started", id: ctx.requestId, model: produced.model.id, provider: produced.provider };
    rec.model = produced.model;
    rec.provider = produced.provider;
    rec.usage = produced.usage;
    rec.cost = costOf(produced.model, produced.usage.inputTokens, produced.usage.outputTokens);
    yield {
      type: "completed",
      finishReason: produced.finishReason,
      usage: produced.usage,
      costUsdNanos: rec.cost,
      cached: false,
      attempts: rec.attempts.length,
    };
    return produced;
  }

  /** Emits a finished generation as a stream: from the cache, or from an identical call's shared result. */
  private *emit(value: CachedGeneration, model: CatalogueModel, rec: CallRecord, ctx: CallContext, cached: boolean): Generator<GenerationEvent> {
    rec.model = model;
    rec.provider = value.provider;
    rec.usage = { ...value.usage };
    rec.cached = cached;
    rec.cost = cached ? 0n : costOf(model, value.usage.inputTokens, value.usage.outputTokens);
    yield { type: "started", id: ctx.requestId, model: value.model, provider: value.provider };
    for (const text of value.chunks) {
      rec.firstTokenAt ??= this.now();
      yield { type: "delta", text };
    }
    yield {
      type: "completed",
      finishReason: value.finishReason,
      usage: value.usage,
      costUsdNanos: rec.cost,
      cached,
      attempts: rec.attempts.length,
    };
  }

  /** Answers a repeated idempotency key with the first call's result (its id included); this call costs nothing. */
  private *replayResult(result: GenerationResult, rec: CallRecord): Generator<GenerationEvent> {
    rec.provider = result.provider;
    rec.usage = { ...result.usage };
    rec.cached = true;
    yield { type: "started", id: result.id, model: result.model, provider: result.provider };
    if (result.text.length > 0) yield { type: "delta", text: result.text };
    yield { type: "completed", finishReason: result.finishReason, usage: result.usage, costUsdNanos: 0n, cached: true, attempts: 0 };
  }

  private toCached(p: Produced): CachedGeneration {
    return { model: p.model.id, provider: p.provider, chunks: p.chunks, finishReason: p.finishReason, usage: p.usage, createdAt: this.now() };
  }

  private resultOf(ctx: CallContext, rec: CallRecord, text: string, finishReason: FinishReason): GenerationResult {
    return {
      id: ctx.requestId,
      model: rec.model?.id ?? "",
      provider: rec.provider,
      text,
      finishReason,
      usage: rec.usage,
      costUsdNanos: rec.cost,
      cached: rec.cached,
      attempts: rec.attempts.length,
    };
  }

  /** Reserves the key's and tenant's limits for the pre-flight estimate; throws RATE_LIMITED / BUDGET_EXCEEDED. */
  private async reserve(principal: Principal, model: CatalogueModel, req: GenerationRequest, inputTokens: number): Promise<Ticket | undefined> {
    const limiter = this.deps.limiter;
    if (!limiter) return undefined;
    const subjects: LimitSubject[] = [];
    if (principal.limits && Object.keys(principal.limits).length > 0) subjects.push({ scope: "key", id: principal.keyId, limits: principal.limits });
    if (principal.tenantLimits && Object.keys(principal.tenantLimits).length > 0) {
      subjects.push({ scope: "tenant", id: principal.tenant, limits: principal.tenantLimits });
    }
    if (subjects.length === 0) return undefined;
    const maxOutput = Math.min(req.maxOutputTokens ?? model.maxOutputTokens, model.maxOutputTokens);
    const result = await this.tracing.inSpan("limits", () => ({ "llm.limit.scopes": subjects.map((s) => s.scope) }), async (span) => {
      const admitted = await limiter.admit(subjects, {
        tokens: inputTokens + maxOutput,
        costUsdNanos: costOf(model, inputTokens, maxOutput),
      });
      if (!admitted.ok) this.tracing.fail(span, admitted.error);
      return admitted;
    });
    if (!result.ok) throw result.error;
    return result.ticket;
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
          const result = await this.tracing.inSpan("batch_item", () => ({ "llm.batch.index": index, "llm.request_id": requestId }), () =>
            this.generate(item, { ...ctx, requestId }),
          );
          results[index] = { ok: true, result };
        } catch (err) {
          results[index] = { ok: false, error: asLlmError(err), requestId };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
    return results;
  }

  /** The models this caller may use. */
  listModels(principal: Principal): readonly CatalogueModel[] {
    return this.deps.catalogue.models.filter((m) => isModelAllowed(principal.allowedModels, m.id, m.aliases));
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
    const violations: FieldViolation[] = [];
    const tenantProblem = unstorableText(tenant);
    if (tenantProblem !== undefined) violations.push({ field: "tenant", description: tenantProblem });
    for (const [field, time] of [["start_time", query.start], ["end_time", query.end]] as const) {
      if (time !== undefined && !isTimestampInRange(time)) violations.push({ field, description: TIMESTAMP_RANGE });
    }
    if (violations.length > 0) throw invalidRequest(violations);
    const end = query.end ?? new Date(this.now());
    const start = query.start ?? new Date(end.getTime() - USAGE_DEFAULT_RANGE_MS);
    if (start.getTime() >= end.getTime()) violations.push({ field: "start_time", description: "must be before end_time" });
    if (end.getTime() - start.getTime() > USAGE_MAX_RANGE_MS) {
      violations.push({ field: "start_time", description: "the range must be at most 400 days" });
    }
    if (violations.length > 0) {
      throw new LlmError("INVALID_REQUEST", `invalid request: ${violations[0]?.description}`, { fieldViolations: violations });
    }
    return this.deps.usageSource.usage(tenant, start, end);
  }

  /** Resolves the model and checks what depends on it: access, output limit, context window. */
  private admit(req: GenerationRequest, principal: Principal): { model: CatalogueModel; inputTokens: number } {
    const model = this.resolve(req.model, principal, "model");
    for (const [i, name] of req.fallbackModels.entries()) this.resolve(name, principal, `fallback_models[${i}]`);
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

  private resolve(name: string, principal: Principal, field: string): CatalogueModel {
    const model = this.deps.catalogue.resolve(name);
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

  private providerRequest(req: GenerationRequest, model: CatalogueModel, whole: boolean): ProviderRequest {
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
    };
  }

  private finish(req: GenerationRequest, ctx: CallContext, rec: CallRecord, startedAt: number, failure: LlmError | undefined): void {
    const finishedAt = this.now();
    const status = !failure ? "ok" : failure.reason === "CANCELLED" ? "cancelled" : "failed";
    const model = rec.model?.id ?? this.deps.catalogue.resolve(req.model)?.id ?? storableText(req.model.slice(0, 128));
    this.deps.usageSink.record({
      id: randomUUID(),
      requestId: ctx.requestId,
      ...(ctx.clientRequestId !== undefined ? { clientRequestId: ctx.clientRequestId } : {}),
      keyId: ctx.principal.keyId,
      tenant: ctx.principal.tenant,
      model,
      provider: rec.provider,
      status,
      errorReason: failure?.reason ?? null,
      inputTokens: rec.usage.inputTokens,
      outputTokens: rec.usage.outputTokens,
      costUsdNanos: rec.cached ? 0n : rec.cost,
      cached: rec.cached,
      attempts: rec.attempts,
      latencyMs: finishedAt - startedAt,
      timeToFirstTokenMs: rec.firstTokenAt === null ? null : rec.firstTokenAt - startedAt,
      startedAt: new Date(startedAt),
      finishedAt: new Date(finishedAt),
      metadata: rec.model ? req.metadata : storableMetadata(req.metadata),
    });
    const costUsdNanos = rec.cached ? 0n : rec.cost;
    const timeToFirstTokenMs = rec.firstTokenAt === null ? null : rec.firstTokenAt - startedAt;
    // On the call's span (the RPC's, or a batch item's).
    if (this.tracing.recording()) this.tracing.annotate({
      [GEN_AI.operation]: CHAT,
      [GEN_AI.requestModel]: req.model.slice(0, 128),
      ...(rec.model ? { [GEN_AI.responseModel]: rec.model.id } : {}),
      ...(rec.provider !== "" ? { [GEN_AI.provider]: rec.provider } : {}),
      [GEN_AI.inputTokens]: rec.usage.inputTokens,
      [GEN_AI.outputTokens]: rec.usage.outputTokens,
      "llm.status": status,
      "llm.cached": rec.cached,
      "llm.attempts": rec.attempts.length,
      "llm.cost_usd_nanos": Number(costUsdNanos),
      ...(failure ? { "llm.error.reason": failure.reason } : {}),
    });
    this.deps.onFinish?.({
      requestId: ctx.requestId,
      ...(ctx.clientRequestId !== undefined ? { clientRequestId: ctx.clientRequestId } : {}),
      principal: ctx.principal,
      model,
      provider: rec.provider,
      status,
      reason: failure?.reason ?? null,
      cached: rec.cached,
      latencyMs: finishedAt - startedAt,
      attempts: rec.attempts.length,
      catalogued: this.deps.catalogue.resolve(model) !== undefined,
      usage: { ...rec.usage },
      costUsdNanos,
      timeToFirstTokenMs,
      cacheLookup: rec.cacheLookup,
      joinedFlight: rec.joinedFlight,
      ...(failure ? { error: failure } : {}),
    });
  }
}

/**
 * Metadata as the ledger can store it, for a call refused before admission resolved its model
 * (validation among the reasons): a refused call is still recorded, its unstorable text replaced.
 */
function storableMetadata(metadata: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(metadata)) out[storableText(key)] = storableText(value);
  return out;
}
