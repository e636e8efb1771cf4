import { SpanKind, type Attributes } from "@opentelemetry/api";
import type { DeploymentConfig, RoutingConfig } from "../config.js";
import { abortReason, sleep as abortableSleep } from "../core/abort.js";
import { deadlineSignal, type DeadlineSignal } from "../core/deadline-signal.js";
import { LlmError, asLlmError, type AttemptRecord } from "../errors/llm-error.js";
import { TAXONOMY, type ErrorReason } from "../errors/taxonomy.js";
import type { FinishReason, TokenUsage } from "../core/types.js";
import type { AttemptOptions, DeltaSink, Provider, ProviderDone, ProviderRequest } from "../providers/provider.js";
import { FIRST_TOKEN_EVENT, GEN_AI, attemptAttributes, attemptSpanName, outputAttributes, responseAttributes } from "../telemetry/gen-ai.js";
import { Tracing } from "../telemetry/tracing.js";
import { fullJitterDelay } from "./backoff.js";
import type { Catalogue, CatalogueModel } from "./catalogue.js";
import { CircuitBreaker, type CircuitStateName } from "./circuit-breaker.js";
import { RetryBudget } from "./retry-budget.js";

/**
 * Where a route pushes what happens: each attempt as it starts and ends, and the answer's text
 * deltas (the DeltaSink part), synchronously and in order. The router keeps no state for its caller.
 */
export interface RouteSink extends DeltaSink {
  /** An upstream attempt starts: its deltas, if any, come from this model and provider. */
  attemptStarted(model: CatalogueModel, provider: string): void;
  /** An attempt ended, or was skipped (CIRCUIT_OPEN). */
  attemptEnded(record: AttemptRecord): void;
}

/** How a route ended well: the model and provider that answered, and the answer's end. */
export interface RouteResult {
  model: CatalogueModel;
  provider: string;
  finishReason: FinishReason;
  usage: TokenUsage;
}

export interface RouteOptions {
  signal: AbortSignal;
  /** Absolute deadline, ms since the epoch. */
  deadline: number;
}

/**
 * What each attempt asks of its provider, and how its span describes the request: a generation
 * (GENERATION, what `run` does) or another call such as embeddings (`runCall`).
 */
export interface UpstreamCall<R> {
  /** The attempt span's name: "{operation} {model}". */
  spanName(model: string): string;
  attributes(provider: string, model: string, request: R, captureContent: boolean): Attributes;
  invoke(provider: Provider, deployment: DeploymentConfig, request: R, options: AttemptOptions, sink: DeltaSink): Promise<ProviderDone>;
}

export const GENERATION: UpstreamCall<ProviderRequest> = {
  spanName: attemptSpanName,
  attributes: attemptAttributes,
  invoke: (provider, deployment, request, options, sink) => provider.generate(deployment, request, options, sink),
};

/** Things a router reports for logs and metrics. */
export type RouterEvent =
  | { type: "retry"; provider: string; deployment: string; reason: ErrorReason; delayMs: number }
  | { type: "fallback"; from: string; reason: ErrorReason }
  | { type: "circuit"; provider: string; deployment: string; from: CircuitStateName; to: CircuitStateName };

/** One finished upstream attempt, for metrics. */
export interface AttemptOutcome {
  provider: string;
  /** The model name the provider knows. */
  deployment: string;
  /** "OK", or the reason it failed ("CANCELLED" when the caller stopped reading). */
  reason: ErrorReason | "OK";
  latencyMs: number;
  usage?: { inputTokens: number; outputTokens: number };
}

export interface RouterDeps {
  now?: () => number;
  random?: () => number;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  onEvent?: (event: RouterEvent) => void;
  /** Called once per upstream attempt when it ends. */
  onAttempt?: (outcome: AttemptOutcome) => void;
  /** Spans: the route, each attempt (GenAI conventions), each backoff wait. */
  tracing?: Tracing;
}

/** Reasons that say something about a deployment's health, and so count against its breaker. */
const BREAKER_REASONS: ReadonlySet<ErrorReason> = new Set([
  "PROVIDER_UNAVAILABLE",
  "PROVIDER_TIMEOUT",
  "PROVIDER_RATE_LIMITED",
  "PROVIDER_AUTH_FAILED",
]);

/** Orders deployments: a weighted random choice first, the rest after it in weighted order. */
export function orderDeployments(deployments: readonly DeploymentConfig[], random: () => number = Math.random): DeploymentConfig[] {
  const left = [...deployments];
  const out: DeploymentConfig[] = [];
  while (left.length > 0) {
    const total = left.reduce((sum, d) => sum + d.weight, 0);
    let pick = random() * total;
    let index = left.findIndex((d) => (pick -= d.weight) < 0);
    if (index < 0) index = left.length - 1;
    out.push(...left.splice(index, 1));
  }
  return out;
}

function deploymentKey(d: DeploymentConfig): string {
  return `${d.provider}/${d.model}`;
}

/**
 * Plans and runs attempts inside the caller's deadline: the requested model's
 * deployments (weighted, healthy ones first), then the request's fallbacks,
 * then the model's configured ones. Each attempt gets min(attempt timeout,
 * time left) and a signal that fires then or when the client cancels;
 * retryable failures back off with full jitter or the upstream's Retry-After;
 * once a token has been sent nothing is retried. Every attempt, a retry
 * included, must pass the deployment's circuit breaker, and a retry must also
 * find its retry budget (retry-budget.ts) more than half full: under a total
 * upstream outage each call makes about one upstream request, not maxAttempts.
 */
export class Router {
  private readonly breakers = new Map<string, CircuitBreaker>();
  private readonly budgets = new Map<string, RetryBudget>();
  private readonly routing: RoutingConfig;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  private readonly tracing: Tracing;

  constructor(
    private readonly catalogue: Catalogue,
    private readonly providers: ReadonlyMap<string, Provider>,
    private readonly deps: RouterDeps = {},
  ) {
    this.routing = catalogue.routing;
    this.now = deps.now ?? Date.now;
    this.random = deps.random ?? Math.random;
    this.sleep = deps.sleep ?? abortableSleep;
    this.tracing = deps.tracing ?? Tracing.disabled;
  }

  /** The live breaker state of a deployment. */
  circuitState(deployment: DeploymentConfig): CircuitStateName {
    return this.breakers.get(deploymentKey(deployment))?.state ?? "closed";
  }

  /** The models to try, in order, without repeats. */
  plan(primary: CatalogueModel, fallbackNames: readonly string[]): CatalogueModel[] {
    const out: CatalogueModel[] = [primary];
    for (const name of [...fallbackNames, ...primary.fallbacks]) {
      const model = this.catalogue.resolve(name);
      if (model && !out.includes(model)) out.push(model);
    }
    return out;
  }

  /**
   * Runs the plan: pushes the answer's deltas and the attempts into `sink`, and resolves with how
   * it ended; rejects with an LlmError carrying every attempt. Under a recording span it runs in a
   * "route" span whose children are the attempts and backoff waits.
   */
  run(
    models: readonly CatalogueModel[],
    request: (model: CatalogueModel) => ProviderRequest,
    options: RouteOptions,
    sink: RouteSink,
  ): Promise<RouteResult> {
    return this.runCall(GENERATION, models, request, options, sink);
  }

  /** As `run`, for any call a provider answers (`call.invoke`), with the same attempts, breakers, budgets and deadline. */
  runCall<R>(
    call: UpstreamCall<R>,
    models: readonly CatalogueModel[],
    request: (model: CatalogueModel) => R,
    options: RouteOptions,
    sink: RouteSink,
  ): Promise<RouteResult> {
    const span = this.tracing.startSpan("route", () => ({ "llm.route.models": models.map((m) => m.id) }));
    if (!span.isRecording()) return this.route(call, models, request, options, sink, []);
    const attempts: AttemptRecord[] = [];
    return this.tracing.bind(span, () => this.route(call, models, request, options, sink, attempts)).then(
      (result) => {
        span.setAttributes({ "llm.attempts": attempts.length, [GEN_AI.provider]: result.provider, "llm.model": result.model.id });
        this.tracing.end(span);
        return result;
      },
      (err: unknown) => {
        span.setAttribute("llm.attempts", attempts.length);
        this.tracing.fail(span, err);
        this.tracing.end(span);
        throw err;
      },
    );
  }

  private async route<R>(
    call: UpstreamCall<R>,
    models: readonly CatalogueModel[],
    request: (model: CatalogueModel) => R,
    options: RouteOptions,
    sink: RouteSink,
    attempts: AttemptRecord[],
  ): Promise<RouteResult> {
    const route: Route = { sink, attempts, committed: false };
    let last: LlmError | undefined;
    let allOpen = true;
    for (const model of models) {
      for (const deployment of this.order(model.deployments)) {
        const breaker = this.breaker(deployment);
        if (!breaker.tryAcquire()) {
          record(route, { provider: deployment.provider, deployment: deployment.model, reason: "CIRCUIT_OPEN", latencyMs: 0 });
          continue;
        }
        allOpen = false;
        const outcome = await this.attempts(call, model, deployment, breaker, request, route, options);
        if (!(outcome instanceof LlmError)) return outcome;
        last = outcome;
        if (!TAXONOMY[outcome.reason].fallback) throw outcome.withAttempts(attempts);
        this.deps.onEvent?.({ type: "fallback", from: `${deployment.provider}/${deployment.model}`, reason: outcome.reason });
      }
    }
    if (allOpen) {
      throw new LlmError("CIRCUIT_OPEN", "every deployment of the requested models is failing; try again shortly", {
        attempts,
        retryAfterMs: this.routing.breaker.openMs,
      });
    }
    throw (last ?? new LlmError("PROVIDER_UNAVAILABLE", "no deployment could serve the request")).withAttempts(attempts);
  }

  /**
   * Tries one deployment up to maxAttempts times. Resolves with the result on success, or with
   * the error when the caller may fall back; throws when nothing more may be tried.
   */
  private async attempts<R>(
    call: UpstreamCall<R>,
    model: CatalogueModel,
    deployment: DeploymentConfig,
    breaker: CircuitBreaker,
    request: (model: CatalogueModel) => R,
    route: Route,
    options: RouteOptions,
  ): Promise<RouteResult | LlmError> {
    const provider = this.providers.get(deployment.provider);
    if (!provider) {
      breaker.onIgnored();
      throw new LlmError("INTERNAL", `provider ${deployment.provider} is not configured`, { attempts: route.attempts });
    }
    const budget = this.budget(deployment);
    let last: LlmError | undefined;
    for (let attempt = 1; ; attempt++) {
      // The first attempt's breaker permit was taken by the caller; a retry asks again, so an
      // open breaker (or a half-open one already probing) stops it, as does an exhausted budget.
      if (attempt > 1 && (!budget.allowsRetry || !breaker.tryAcquire())) return last as LlmError;
      if (options.signal.aborted) {
        breaker.onIgnored();
        throw abortReason(options.signal).withAttempts(route.attempts);
      }
      const timeLeft = options.deadline - this.now();
      if (timeLeft < Math.max(1, this.routing.minAttemptMs)) {
        breaker.onIgnored();
        throw new LlmError("PROVIDER_TIMEOUT", "deadline exceeded", { attempts: route.attempts });
      }
      const timeoutMs = Math.min(this.routing.attemptTimeoutMs, timeLeft);
      const started = this.now();
      const signal = attemptSignal(options.signal, timeoutMs, timeoutMs === timeLeft);
      const providerRequest = request(model);
      // The attempt's span is active while the provider works, so its upstream HTTP call carries it as traceparent.
      const span = this.tracing.startSpan(
        call.spanName(deployment.model),
        () => ({
          ...call.attributes(provider.name, deployment.model, providerRequest, this.tracing.captureContent),
          "llm.model": model.id,
          "llm.attempt": attempt,
          "llm.attempt_timeout_ms": timeoutMs,
        }),
        SpanKind.CLIENT,
      );
      const recording = span.isRecording();
      const output: string[] | undefined = recording && this.tracing.captureContent ? [] : undefined;
      const { sink } = route;
      // Deltas go straight through to the caller's sink: no queue, no await.
      const deltas: DeltaSink = {
        delta: (text) => {
          if (!route.committed) {
            route.committed = true;
            if (recording) {
              const seconds = (this.now() - started) / 1000;
              span.setAttribute(GEN_AI.timeToFirstChunk, seconds);
              span.addEvent(FIRST_TOKEN_EVENT, { [GEN_AI.timeToFirstChunk]: seconds });
            }
          }
          output?.push(text);
          return sink.delta(text);
        },
        drained: () => sink.drained(),
      };
      sink.attemptStarted(model, provider.name);
      const report = (reason: ErrorReason | "OK", usage?: { inputTokens: number; outputTokens: number }) =>
        this.deps.onAttempt?.({ provider: provider.name, deployment: deployment.model, reason, latencyMs: this.now() - started, ...(usage ? { usage } : {}) });
      let error: LlmError;
      try {
        const done = await (recording
          ? this.tracing.bind(span, () => call.invoke(provider, deployment, providerRequest, { signal: signal.signal, timeoutMs }, deltas))
          : call.invoke(provider, deployment, providerRequest, { signal: signal.signal, timeoutMs }, deltas));
        if (recording) {
          span.setAttributes(responseAttributes(deployment.model, done.finishReason, done.usage));
          if (output) span.setAttributes(outputAttributes(output.join(""), done.finishReason));
        }
        report("OK", done.usage);
        breaker.onSuccess();
        budget.onSuccess();
        record(route, { provider: provider.name, deployment: deployment.model, reason: "OK", latencyMs: this.now() - started });
        this.tracing.end(span);
        return { model, provider: provider.name, finishReason: done.finishReason, usage: done.usage };
      } catch (err) {
        error = signal.signal.aborted ? abortReason(signal.signal) : asLlmError(err);
        report(error.reason);
        // The caller went away (it stopped reading, or cancelled): the attempt was abandoned.
        if (options.signal.aborted) span.setAttribute("llm.attempt.abandoned", true);
        this.tracing.fail(span, error);
        this.tracing.end(span);
      } finally {
        signal.dispose();
      }
      record(route, { provider: provider.name, deployment: deployment.model, reason: error.reason, latencyMs: this.now() - started });
      if (BREAKER_REASONS.has(error.reason) && !options.signal.aborted) {
        breaker.onFailure();
        budget.onFailure();
      } else {
        breaker.onIgnored();
      }
      last = error;

      // After the first token, or once the client is gone, nothing more is tried.
      if (route.committed || options.signal.aborted) throw error.withAttempts(route.attempts);
      if (!error.retryable || attempt >= this.routing.maxAttempts) return error;
      // No wait for a retry that could not start: the budget is spent or the breaker has opened.
      if (!budget.allowsRetry || this.circuitState(deployment) === "open") return error;

      const delay = error.retryAfterMs ?? fullJitterDelay(attempt, this.routing.backoffBaseMs, this.routing.backoffCapMs, this.random);
      const leftAfterWait = options.deadline - this.now() - delay;
      if (leftAfterWait < Math.max(1, this.routing.minAttemptMs)) {
        // Waiting would spend the deadline: end with this error (its RetryInfo tells the client when to come back),
        // unless another deployment can be tried at once.
        return error;
      }
      this.deps.onEvent?.({ type: "retry", provider: provider.name, deployment: deployment.model, reason: error.reason, delayMs: delay });
      await this.tracing
        .inSpan(
          "backoff",
          { "llm.backoff.delay_ms": delay, "llm.backoff.retry_after": error.retryAfterMs !== undefined, "llm.retry.reason": error.reason, "llm.attempt": attempt },
          () => this.sleep(delay, options.signal),
        )
        .catch((err: unknown) => {
          throw asLlmError(err).withAttempts(route.attempts);
        });
    }
  }

  /** Deployments in weighted order, those whose breaker admits calls first. */
  private order(deployments: readonly DeploymentConfig[]): DeploymentConfig[] {
    const ordered = orderDeployments(deployments, this.random);
    const open = (d: DeploymentConfig) => (this.circuitState(d) === "open" ? 1 : 0);
    return ordered.sort((a, b) => open(a) - open(b));
  }

  private budget(deployment: DeploymentConfig): RetryBudget {
    const key = deploymentKey(deployment);
    let budget = this.budgets.get(key);
    if (!budget) {
      budget = new RetryBudget(this.routing.retryBudget);
      this.budgets.set(key, budget);
    }
    return budget;
  }

  private breaker(deployment: DeploymentConfig): CircuitBreaker {
    const key = deploymentKey(deployment);
    let breaker = this.breakers.get(key);
    if (!breaker) {
      breaker = new CircuitBreaker({ ...this.routing.breaker, now: this.now }, (from, to) =>
        this.deps.onEvent?.({ type: "circuit", provider: deployment.provider, deployment: deployment.model, from, to }),
      );
      this.breakers.set(key, breaker);
    }
    return breaker;
  }
}

/** One route in progress: the caller's sink, the attempts so far, and whether a token has gone out. */
interface Route {
  readonly sink: RouteSink;
  readonly attempts: AttemptRecord[];
  /** True once a token has gone out: from then on nothing is retried. */
  committed: boolean;
}

function record(route: Route, attempt: AttemptRecord): void {
  route.attempts.push(attempt);
  route.sink.attemptEnded(attempt);
}

/**
 * A signal that fires when the parent does (its reason kept) or after timeoutMs:
 * PROVIDER_TIMEOUT either way, worded for the deadline when the attempt had all the time left.
 */
function attemptSignal(parent: AbortSignal, timeoutMs: number, isDeadline: boolean): DeadlineSignal {
  return deadlineSignal({
    parent,
    timeoutMs,
    expired: () => new LlmError("PROVIDER_TIMEOUT", isDeadline ? "deadline exceeded" : `upstream attempt timed out after ${timeoutMs} ms`),
  });
}
