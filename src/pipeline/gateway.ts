import { cacheKey } from "../cache/cache-key.js";
import { decideCache, type CacheDefaults } from "../cache/cache-policy.js";
import type { Idempotency, IdempotencyLease } from "../cache/idempotency.js";
import type { CachedGeneration, ResponseCache } from "../cache/response-cache.js";
import { SingleFlight } from "../cache/single-flight.js";
import type { DeploymentConfig } from "../config.js";
import { PushQueue } from "../core/push-queue.js";
import { isModelAllowed } from "../core/model-access.js";
import type { TokenCounter } from "../core/token-counter.js";
import type { CallContext, EmbedRequest, EmbedResult, GenerationEvent, GenerationRequest, GenerationResult, Principal, UsageReport, UsageSink, UsageSource } from "../core/types.js";
import { LlmError, asLlmError } from "../errors/llm-error.js";
import type { Limiter, Ticket } from "../limits/limiter.js";
import type { Catalogue, CatalogueModel } from "../router/catalogue.js";
import type { CircuitStateName } from "../router/circuit-breaker.js";
import type { Router } from "../router/router.js";
import { OutputSchemas } from "../structured/output-schemas.js";
import { GEN_AI } from "../telemetry/gen-ai.js";
import { Tracing } from "../telemetry/tracing.js";
import { Admission } from "./admission.js";
import { CallObserver, type EventSink, type FinishSummary } from "./call-observer.js";
import { runEmbed } from "./embed.js";
import { reserveLimits } from "./limits-stage.js";
import { produceWhole, providerRequest, type Produced } from "./upstream.js";
import { usageRange } from "./usage-request.js";

export type { FinishSummary } from "./call-observer.js";

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
  /** Callers' JSON Schemas, compiled once each; absent: a cache of its own. */
  outputSchemas?: OutputSchemas;
  now?: () => number;
}

export type BatchItemResult = { ok: true; result: GenerationResult } | { ok: false; error: LlmError; requestId: string };

/** How a streamed call's events reach the RPC layer: mapped as they are pushed, so no layer re-reads them. */
export interface StreamOptions<T> {
  map: (event: GenerationEvent) => T;
  /** What the consumer sees instead of the LlmError a call fails with. */
  mapError?: (error: LlmError) => unknown;
  /** Runs once when the call is over, however it ended. */
  onEnd?: () => void;
}

const DEFAULT_CACHE: CacheDefaults = { defaultTtlMs: 3_600_000, maxTtlMs: 86_400_000 };
const NO_WAIT = Promise.resolve();

/**
 * The call pipeline. For each call, in stages: admission (validation, the model and its access,
 * the prompt's size); a repeated idempotency key answered from its first result; limits and
 * budget reserved; the response cache; identical calls in flight sharing one upstream call;
 * otherwise the router. The stages push the call's events to a CallObserver, which forwards them
 * to the consumer and, at the end, writes exactly one usage record, whatever the outcome.
 *
 * Nothing is pulled through layers: the provider pushes each delta synchronously through the
 * router and the observer into the consumer's sink (a PushQueue for a stream, a collector for a
 * unary call).
 */
export class Gateway {
  private readonly now: () => number;
  private readonly flights = new SingleFlight<Produced>();
  private readonly cacheDefaults: CacheDefaults;
  private readonly tracing: Tracing;
  private readonly admission: Admission;

  constructor(private readonly deps: GatewayDeps) {
    this.now = deps.now ?? Date.now;
    this.tracing = deps.tracing ?? Tracing.disabled;
    this.cacheDefaults = deps.cacheDefaults ?? DEFAULT_CACHE;
    this.admission = new Admission(deps.catalogue, deps.tokens, deps.outputSchemas ?? new OutputSchemas());
  }

  /** Calls that joined an identical call in flight instead of reaching the upstream. */
  get singleFlightJoins(): number {
    return this.flights.joins;
  }

  /**
   * Streams one generation: started, deltas, completed, each mapped by `options.map` as it is
   * pushed. The call starts at once (in the caller's async context). A consumer that stops reading
   * cancels the call. Errors end the iteration (as `options.mapError` makes them).
   */
  stream<T>(req: GenerationRequest, ctx: CallContext, options: StreamOptions<T>): AsyncIterableIterator<T> {
    const controller = new AbortController();
    const parent = ctx.signal;
    const follow = () => controller.abort(parent.reason);
    if (parent.aborted) follow();
    else parent.addEventListener("abort", follow, { once: true });
    const queue = new PushQueue<T>({ onReturn: () => controller.abort(new LlmError("CANCELLED", "the call was cancelled")) });
    const { map, mapError, onEnd } = options;
    const sink: EventSink = { push: (event) => queue.push(map(event)), drained: () => queue.drained() };
    this.run(req, { ...ctx, signal: controller.signal }, sink, false).then(
      () => {
        parent.removeEventListener("abort", follow);
        onEnd?.();
        queue.end();
      },
      (err: unknown) => {
        parent.removeEventListener("abort", follow);
        onEnd?.();
        queue.fail(mapError ? mapError(asLlmError(err)) : err);
      },
    );
    return queue;
  }

  /** One complete generation; identical cacheable calls in flight share one upstream call. */
  async generate(req: GenerationRequest, ctx: CallContext): Promise<GenerationResult> {
    let text = "";
    let head: { id: string; model: string; provider: string } | undefined;
    let result: GenerationResult | undefined;
    const sink: EventSink = {
      push: (event) => {
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
        return true;
      },
      drained: () => NO_WAIT,
    };
    await this.run(req, ctx, sink, true);
    if (!result) throw new LlmError("INTERNAL", "generation ended without a result");
    return result;
  }

  /** Runs one call's stages, pushing its events into `out`. `unary`: the caller wants the whole answer at once (identical calls may share it). */
  private async run(req: GenerationRequest, ctx: CallContext, out: EventSink, unary: boolean): Promise<void> {
    const call = new CallObserver(
      { catalogue: this.deps.catalogue, usageSink: this.deps.usageSink, tracing: this.tracing, now: this.now, ...(this.deps.onFinish ? { onFinish: this.deps.onFinish } : {}) },
      req,
      ctx,
      out,
    );
    let failure: LlmError | undefined;
    let ticket: Ticket | undefined;
    let lease: IdempotencyLease | undefined;
    const admission = this.tracing.startSpan("admission");
    try {
      const { model, inputTokens, output } = this.admission.admit(req, ctx.principal);
      call.admitted(model, inputTokens, output);
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
          call.replayed(start.result);
          return;
        }
        lease = start.lease;
      }

      ticket = await this.tracing.bind(admission, () => reserveLimits(this.deps.limiter, this.tracing, ctx.principal, model, req, inputTokens));
      this.tracing.end(admission);
      const policy = decideCache(req, this.cacheDefaults);
      const cache = this.deps.cache;
      if (policy.read && cache) {
        const hit = await this.tracing.inSpan("cache.lookup", {}, async (span) => {
          const found = await cache.get(requestKey());
          const usable = found !== undefined && found.model === model.id;
          span.setAttribute("llm.cache.hit", usable);
          return usable ? found : undefined;
        });
        call.cacheLooked(hit !== undefined);
        if (hit) {
          call.finished(hit, model, { cached: true });
          await lease?.complete(call.result(hit.chunks.join(""), hit.finishReason));
          return;
        }
      }

      // A unary caller's answer may come from a non-streamed upstream call, as one delta, unless the
      // cache keeps it: a StreamGenerate answered from the cache later replays the upstream's deltas.
      const whole = unary && !(policy.write && cache);
      let produced: CachedGeneration;
      let joined = false;
      if (unary && policy.write) {
        // The call that starts the flight runs the router inside this span; the others wait in theirs.
        const flight = await this.tracing.inSpan("single_flight", {}, async (span) => {
          const joined = await this.flights.run(requestKey(), (f) => produceWhole(this.deps.router, model, req, f, whole), {
            signal: ctx.signal,
            deadline: ctx.deadline,
          });
          span.setAttribute("llm.single_flight.joined", joined.shared);
          return joined;
        });
        produced = this.toCached(flight.value);
        joined = flight.shared;
        call.finished(produced, flight.value.model, { cached: flight.shared, joined: flight.shared, ...(flight.shared ? {} : { attempts: flight.value.attempts }) });
      } else {
        produced = await this.live(model, req, ctx, whole, call);
      }
      // A mismatching answer passed through is the caller's to keep, never the cache's.
      if (policy.write && cache && !joined && !call.outputMismatched) {
        void cache.set(requestKey(), produced, policy.ttlMs);
      }
      await lease?.complete(call.result(produced.chunks.join(""), produced.finishReason));
    } catch (err) {
      failure = asLlmError(err);
      this.tracing.end(admission, failure);
      throw failure;
    } finally {
      this.tracing.end(admission);
      // A consumer that stopped early cancelled the call: that is its failure (CANCELLED).
      if (!call.completed) {
        failure ??= new LlmError("CANCELLED", "the call was cancelled");
        await lease?.abandon();
      }
      // Always asked (it prices a failed call that reached an upstream), whether or not limits apply.
      const spent = call.spent(failure);
      await ticket?.settle(spent);
      call.finish(failure);
    }
  }

  /** The live answer: the router pushes each delta through the observer to the consumer as it arrives. */
  private async live(model: CatalogueModel, req: GenerationRequest, ctx: CallContext, whole: boolean, call: CallObserver): Promise<CachedGeneration> {
    // Kept only for the cache and an idempotency key's result.
    const chunks: string[] = [];
    const keep = req.idempotencyKey !== "" || this.deps.cache !== undefined;
    const sink = keep
      ? {
          attemptStarted: (m: CatalogueModel, p: string) => call.attemptStarted(m, p),
          attemptEnded: call.attemptEnded.bind(call),
          delta: (text: string) => {
            chunks.push(text);
            return call.delta(text);
          },
          drained: () => call.drained(),
        }
      : call;
    const result = await this.deps.router.run(this.deps.router.plan(model, req.fallbackModels), (m) => providerRequest(req, m, whole), ctx, sink);
    call.routed(result);
    return { model: result.model.id, provider: result.provider, chunks, finishReason: result.finishReason, usage: result.usage, createdAt: this.now() };
  }

  private toCached(p: Produced): CachedGeneration {
    return { model: p.model.id, provider: p.provider, chunks: p.chunks, finishReason: p.finishReason, usage: p.usage, createdAt: this.now() };
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

  /** One vector per input, through the same stages as a generation (embed.ts). */
  embed(req: EmbedRequest, ctx: CallContext): Promise<EmbedResult> {
    const { catalogue, router, usageSink, limiter, cache, onFinish } = this.deps;
    return runEmbed(
      {
        catalogue,
        router,
        usageSink,
        ...(limiter ? { limiter } : {}),
        ...(cache ? { cache } : {}),
        ...(onFinish ? { onFinish } : {}),
        cacheDefaults: this.cacheDefaults,
        tracing: this.tracing,
        now: this.now,
      },
      this.admission,
      req,
      ctx,
    );
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
    const range = usageRange(principal, query, this.now());
    return this.deps.usageSource.usage(range.tenant, range.start, range.end);
  }
}
