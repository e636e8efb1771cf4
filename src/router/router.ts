import type { DeploymentConfig } from "../config.js";
import { abortReason } from "../core/abort.js";
import { LlmError, asLlmError, type AttemptRecord } from "../errors/llm-error.js";
import { TAXONOMY } from "../errors/taxonomy.js";
import type { Provider, ProviderEvent, ProviderRequest } from "../providers/provider.js";
import type { Catalogue, CatalogueModel } from "./catalogue.js";

/** What the router learns while it works; the core reads it for the response and the ledger. */
export interface RouteState {
  /** The model that answered (or was last tried). */
  model?: CatalogueModel;
  provider: string;
  attempts: AttemptRecord[];
  /** True once a token has gone out: from then on nothing is retried. */
  committed: boolean;
}

export interface RouteOptions {
  signal: AbortSignal;
  /** Absolute deadline, ms since the epoch. */
  deadline: number;
  now?: () => number;
}

/** Orders a model's deployments: a weighted random choice first, the rest after it in weighted order. */
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

/**
 * Plans and runs attempts: the requested model's deployments, then the
 * request's fallbacks, then the model's configured fallbacks. Each attempt
 * gets the time left before the deadline and a signal that fires at it.
 * Retries with backoff and circuit breakers come with the real providers.
 */
export class Router {
  constructor(
    private readonly catalogue: Catalogue,
    private readonly providers: ReadonlyMap<string, Provider>,
  ) {}

  /** The models to try, in order, without repeats. */
  plan(primary: CatalogueModel, fallbackNames: readonly string[]): CatalogueModel[] {
    const out: CatalogueModel[] = [primary];
    for (const name of [...fallbackNames, ...primary.fallbacks]) {
      const model = this.catalogue.resolve(name);
      if (model && !out.includes(model)) out.push(model);
    }
    return out;
  }

  async *stream(
    models: readonly CatalogueModel[],
    request: (model: CatalogueModel) => ProviderRequest,
    state: RouteState,
    options: RouteOptions,
  ): AsyncGenerator<ProviderEvent> {
    const now = options.now ?? Date.now;
    let last: LlmError | undefined;
    for (const model of models) {
      for (const deployment of orderDeployments(model.deployments)) {
        if (options.signal.aborted) throw abortReason(options.signal).withAttempts(state.attempts);
        const timeLeft = options.deadline - now();
        if (timeLeft <= 0) {
          throw new LlmError("PROVIDER_TIMEOUT", "deadline exceeded", { attempts: state.attempts });
        }
        const provider = this.providers.get(deployment.provider);
        if (!provider) throw new LlmError("INTERNAL", `no provider ${deployment.provider}`, { attempts: state.attempts });
        state.model = model;
        state.provider = provider.name;
        const started = now();
        const attempt = attemptSignal(options.signal, timeLeft);
        try {
          for await (const event of provider.stream(deployment, request(model), { signal: attempt.signal, timeoutMs: timeLeft })) {
            if (event.type === "delta") state.committed = true;
            yield event;
          }
          state.attempts.push({ provider: provider.name, deployment: deployment.model, reason: "OK", latencyMs: now() - started });
          return;
        } catch (err) {
          const error = attempt.signal.aborted ? abortReason(attempt.signal) : asLlmError(err);
          state.attempts.push({ provider: provider.name, deployment: deployment.model, reason: error.reason, latencyMs: now() - started });
          if (state.committed || !TAXONOMY[error.reason].fallback || options.signal.aborted) {
            throw error.withAttempts(state.attempts);
          }
          last = error;
        } finally {
          attempt.dispose();
        }
      }
    }
    throw (last ?? new LlmError("PROVIDER_UNAVAILABLE", "no deployment could serve the request")).withAttempts(state.attempts);
  }
}

/** A signal that fires when the parent does (its reason kept) or after timeoutMs (PROVIDER_TIMEOUT). */
function attemptSignal(parent: AbortSignal, timeoutMs: number): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const onAbort = () => controller.abort(parent.reason);
  parent.addEventListener("abort", onAbort, { once: true });
  const timer = setTimeout(
    () => controller.abort(new LlmError("PROVIDER_TIMEOUT", `deadline exceeded after ${timeoutMs} ms`)),
    timeoutMs,
  );
  return {
    signal: controller.signal,
    dispose() {
      clearTimeout(timer);
      parent.removeEventListener("abort", onAbort);
    },
  };
}
