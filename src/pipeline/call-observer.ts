import { randomUUID } from "node:crypto";
import type { Span } from "@opentelemetry/api";
import type { CachedGeneration } from "../cache/response-cache.js";
import { LlmError, type AttemptRecord } from "../errors/llm-error.js";
import { costOf, type Catalogue, type CatalogueModel } from "../router/catalogue.js";
import type { RouteResult, RouteSink } from "../router/router.js";
import { CHAT, FIRST_TOKEN_EVENT, GEN_AI } from "../telemetry/gen-ai.js";
import type { Tracing } from "../telemetry/tracing.js";
import { storableText } from "../core/validate.js";
import { outputMismatch, type OutputCheck } from "../structured/output-check.js";
import type { CallContext, GenerationEvent, GenerationRequest, GenerationResult, Principal, TokenUsage, UsageSink } from "../core/types.js";

/** Where a call's events go: the RPC writer's queue, or a collector for a unary answer. */
export interface EventSink {
  /** False when the consumer holds more than it wants (wait for `drained()`). */
  push(event: GenerationEvent): boolean;
  drained(): Promise<void>;
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

/** What the observer reads of a call's request: the model asked for and the caller's metadata. */
export type ObservedRequest = Pick<GenerationRequest, "model" | "metadata">;

export interface ObserverDeps {
  catalogue: Catalogue;
  usageSink: UsageSink;
  tracing: Tracing;
  now: () => number;
  /** Called once per finished call, for metrics and the access log. */
  onFinish?: (summary: FinishSummary) => void;
}

/**
 * The one place that learns what a call did and writes it down. It sits between the call's
 * stages and the consumer: every event the caller sees passes through it (deltas synchronously,
 * straight on to the consumer), and the router's attempts arrive as events too. When the call
 * ends, `finish` writes the ledger row, the span's attributes and the summary for metrics and
 * the access log, from what it observed; nothing else keeps the call's facts.
 */
export class CallObserver implements RouteSink {
  readonly #deps: ObserverDeps;
  readonly #req: ObservedRequest;
  readonly #operation: string;
  readonly #ctx: CallContext;
  readonly #out: EventSink;
  readonly #startedAt: number;
  #model: CatalogueModel | undefined;
  #provider = "";
  #usage: TokenUsage = { inputTokens: 0, outputTokens: 0 };
  #cost = 0n;
  #cached = false;
  readonly #attempts: AttemptRecord[] = [];
  #firstTokenAt: number | null = null;
  #cacheLookup: "hit" | "miss" | null = null;
  #joinedFlight = false;
  #startedSent = false;
  #completed = false;
  /** The model and provider of the attempt in progress: the call's own once that attempt sends a token. */
  #attemptModel: CatalogueModel | undefined;
  #attemptProvider = "";
  /** The answer's check (a JSON response format), and the live answer's text kept for it. */
  #check: OutputCheck | undefined;
  #text = "";
  #mismatched = false;
  /** The call's span (the RPC's, or a batch item's), taken when the call starts: deltas arrive in the upstream attempt's context. */
  readonly #span: Span;

  /** `operation`: the GenAI operation the call's span records (chat, or embeddings for Embed). */
  constructor(deps: ObserverDeps, req: ObservedRequest, ctx: CallContext, out: EventSink, operation: string = CHAT) {
    this.#deps = deps;
    this.#req = req;
    this.#operation = operation;
    this.#ctx = ctx;
    this.#out = out;
    this.#startedAt = deps.now();
    this.#span = deps.tracing.activeSpan();
  }

  /** The call ended with its completed event (a replay, a cache hit, or the upstream's answer). */
  get completed(): boolean {
    return this.#completed;
  }

  /** Admission resolved the model and estimated the prompt, and decided how the answer is checked. */
  admitted(model: CatalogueModel, inputTokens: number, check?: OutputCheck): void {
    this.#model = model;
    this.#usage = { inputTokens, outputTokens: 0 };
    this.#check = check;
  }

  /**
   * The answer did not match the response format and was passed through as the request asked:
   * it must not be kept for other calls (the response cache).
   */
  get outputMismatched(): boolean {
    return this.#mismatched;
  }

  cacheLooked(hit: boolean): void {
    this.#cacheLookup = hit ? "hit" : "miss";
  }

  // RouteSink: the live answer, pushed by the router.

  attemptStarted(model: CatalogueModel, provider: string): void {
    this.#attemptModel = model;
    this.#attemptProvider = provider;
  }

  attemptEnded(record: AttemptRecord): void {
    this.#attempts.push(record);
  }

  delta(text: string): boolean {
    if (this.#firstTokenAt === null) {
      // The first token commits the call to this attempt: its model and provider are the call's.
      this.#model = this.#attemptModel ?? this.#model;
      this.#provider = this.#attemptProvider;
      this.#firstToken();
    }
    if (!this.#startedSent) this.#sendStarted(this.#ctx.requestId, this.#model?.id ?? this.#req.model, this.#provider);
    this.#usage.outputTokens++;
    if (this.#check) this.#text += text;
    return this.#out.push({ type: "delta", text });
  }

  drained(): Promise<void> {
    return this.#out.drained();
  }

  /** The live answer ended well. */
  routed(result: RouteResult): void {
    this.#model = result.model;
    this.#provider = result.provider;
    this.#usage = result.usage;
    this.#cost = costOf(result.model, result.usage);
    if (!this.#startedSent) this.#sendStarted(this.#ctx.requestId, result.model.id, result.provider);
    this.#verify(this.#text);
    this.#complete(result.finishReason, result.usage, this.#cost, false);
  }

  /**
   * A finished generation, sent whole: from the cache, or the result of an identical call in
   * flight, which this caller started (its attempts given) or joined (then, as a cache hit, it is
   * `cached` and costs nothing: the call that started the flight pays).
   */
  finished(value: CachedGeneration, model: CatalogueModel, how: { cached: boolean; joined?: boolean; attempts?: readonly AttemptRecord[] }): void {
    this.#model = model;
    this.#provider = value.provider;
    this.#usage = { ...value.usage };
    this.#cached = how.cached;
    this.#joinedFlight = how.joined ?? false;
    if (how.attempts) this.#attempts.push(...how.attempts);
    this.#cost = how.cached ? 0n : costOf(model, value.usage);
    this.#sendStarted(this.#ctx.requestId, value.model, value.provider);
    for (const text of value.chunks) {
      this.#firstTokenAt ??= this.#deps.now();
      this.#out.push({ type: "delta", text });
    }
    // A response-cache hit was checked before it was stored (under a key that covers the format).
    if (!how.cached || how.joined === true) this.#verify(value.chunks.join(""));
    this.#complete(value.finishReason, value.usage, this.#cost, how.cached);
  }

  /** A repeated idempotency key, answered with the first call's result (its id included); this call costs nothing. */
  replayed(result: GenerationResult): void {
    this.#provider = result.provider;
    this.#usage = { ...result.usage };
    this.#cached = true;
    this.#sendStarted(result.id, result.model, result.provider);
    if (result.text.length > 0) this.#out.push({ type: "delta", text: result.text });
    this.#completed = true;
    this.#out.push({ type: "completed", finishReason: result.finishReason, usage: result.usage, costUsdNanos: 0n, cached: true, attempts: 0 });
  }

  /** This call's answer, as an idempotency key keeps it for a repeat. */
  result(text: string, finishReason: GenerationResult["finishReason"]): GenerationResult {
    return {
      id: this.#ctx.requestId,
      model: this.#model?.id ?? "",
      provider: this.#provider,
      text,
      finishReason,
      usage: this.#usage,
      costUsdNanos: this.#cost,
      cached: this.#cached,
      attempts: this.#attempts.length,
    };
  }

  /** What the call spent, for its limits ticket: nothing when it was answered without the upstream. */
  spent(failure: LlmError | undefined): { tokens: number; costUsdNanos: bigint } {
    if (failure && this.#model && !this.#cached) {
      // Only a call that reached an upstream can have spent anything: one refused at admission
      // (rate limit, budget, idempotency conflict) or failed fast on open circuits costs nothing.
      // An adapter refusing what its vendor cannot do (INVALID_REQUEST) refuses before the call too,
      // as does a provider without the capability (CAPABILITY_NOT_SUPPORTED: embeddings on Anthropic).
      const reachedUpstream = [...this.#attempts, ...failure.attempts].some(
        (a) => a.reason !== "CIRCUIT_OPEN" && a.reason !== "INVALID_REQUEST" && a.reason !== "CAPABILITY_NOT_SUPPORTED",
      );
      this.#cost = reachedUpstream ? costOf(this.#model, this.#usage) : 0n;
    }
    return this.#cached ? { tokens: 0, costUsdNanos: 0n } : { tokens: this.#usage.inputTokens + this.#usage.outputTokens, costUsdNanos: this.#cost };
  }

  /** The call is over: one ledger row, the span's attributes, and the summary for metrics and the access log. */
  finish(failure: LlmError | undefined): void {
    const deps = this.#deps;
    const req = this.#req;
    const ctx = this.#ctx;
    const finishedAt = deps.now();
    const status = !failure ? "ok" : failure.reason === "CANCELLED" ? "cancelled" : "failed";
    const model = this.#model?.id ?? deps.catalogue.resolve(req.model)?.id ?? storableText(req.model.slice(0, 128));
    const costUsdNanos = this.#cached ? 0n : this.#cost;
    const latencyMs = finishedAt - this.#startedAt;
    const timeToFirstTokenMs = this.#firstTokenAt === null ? null : this.#firstTokenAt - this.#startedAt;
    deps.usageSink.record({
      id: randomUUID(),
      requestId: ctx.requestId,
      ...(ctx.clientRequestId !== undefined ? { clientRequestId: ctx.clientRequestId } : {}),
      keyId: ctx.principal.keyId,
      tenant: ctx.principal.tenant,
      model,
      provider: this.#provider,
      status,
      errorReason: failure?.reason ?? null,
      inputTokens: this.#usage.inputTokens,
      outputTokens: this.#usage.outputTokens,
      cachedInputTokens: this.#usage.cachedInputTokens ?? 0,
      cacheWriteInputTokens: this.#usage.cacheWriteInputTokens ?? 0,
      reasoningTokens: this.#usage.reasoningTokens ?? 0,
      costUsdNanos,
      cached: this.#cached,
      attempts: this.#attempts,
      latencyMs,
      timeToFirstTokenMs,
      startedAt: new Date(this.#startedAt),
      finishedAt: new Date(finishedAt),
      metadata: this.#model ? req.metadata : storableMetadata(req.metadata),
    });
    if (this.#span.isRecording()) {
      this.#span.setAttributes({
        [GEN_AI.operation]: this.#operation,
        [GEN_AI.requestModel]: req.model.slice(0, 128),
        ...(this.#model ? { [GEN_AI.responseModel]: this.#model.id } : {}),
        ...(this.#provider !== "" ? { [GEN_AI.provider]: this.#provider } : {}),
        [GEN_AI.inputTokens]: this.#usage.inputTokens,
        [GEN_AI.outputTokens]: this.#usage.outputTokens,
        "llm.status": status,
        "llm.cached": this.#cached,
        "llm.attempts": this.#attempts.length,
        "llm.cost_usd_nanos": Number(costUsdNanos),
        ...(failure ? { "llm.error.reason": failure.reason } : {}),
      });
    }
    deps.onFinish?.({
      requestId: ctx.requestId,
      ...(ctx.clientRequestId !== undefined ? { clientRequestId: ctx.clientRequestId } : {}),
      principal: ctx.principal,
      model,
      provider: this.#provider,
      status,
      reason: failure?.reason ?? null,
      cached: this.#cached,
      latencyMs,
      attempts: this.#attempts.length,
      catalogued: deps.catalogue.resolve(model) !== undefined,
      usage: { ...this.#usage },
      costUsdNanos,
      timeToFirstTokenMs,
      cacheLookup: this.#cacheLookup,
      joinedFlight: this.#joinedFlight,
      ...(failure ? { error: failure } : {}),
    });
  }

  #sendStarted(id: string, model: string, provider: string): void {
    this.#startedSent = true;
    this.#out.push({ type: "started", id, model, provider });
  }

  #firstToken(): void {
    const at = this.#deps.now();
    this.#firstTokenAt = at;
    if (this.#span.isRecording()) {
      const seconds = (at - this.#startedAt) / 1000;
      this.#span.setAttribute(GEN_AI.timeToFirstChunk, seconds);
      this.#span.addEvent(FIRST_TOKEN_EVENT, { [GEN_AI.timeToFirstChunk]: seconds });
    }
  }

  /**
   * The one check of a final answer against the response format, just before the completed event:
   * a mismatch ends the call with OUTPUT_SCHEMA_MISMATCH instead (after the deltas a stream
   * already sent), unless the request passes it through. Spent tokens stay counted either way.
   */
  #verify(text: string): void {
    const check = this.#check;
    if (!check) return;
    const violations = check.violations(text);
    if (violations.length === 0) return;
    this.#mismatched = true;
    if (this.#span.isRecording()) this.#span.setAttribute("llm.output.mismatch", true);
    if (!check.passThroughMismatch) throw outputMismatch(violations);
  }

  #complete(finishReason: GenerationResult["finishReason"], usage: TokenUsage, costUsdNanos: bigint, cached: boolean): void {
    this.#completed = true;
    this.#out.push({ type: "completed", finishReason, usage, costUsdNanos, cached, attempts: this.#attempts.length });
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
