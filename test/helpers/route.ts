import type { DeploymentConfig } from "../../src/config.js";
import { PushQueue } from "../../src/core/push-queue.js";
import type { AttemptRecord } from "../../src/errors/llm-error.js";
import type { AttemptOptions, Provider, ProviderEvent, ProviderRequest } from "../../src/providers/provider.js";
import { pushEvents } from "../../src/providers/push-events.js";
import type { CatalogueModel } from "../../src/router/catalogue.js";
import type { RouteOptions, Router } from "../../src/router/router.js";

/** A test provider written as a generator of events, as a Provider. */
export function streamProvider<T extends object>(
  spec: T & { name: string; stream(deployment: DeploymentConfig, request: ProviderRequest, options: AttemptOptions): AsyncIterable<ProviderEvent> },
): T & Provider {
  return Object.assign(spec, {
    generate: (deployment: DeploymentConfig, request: ProviderRequest, options: AttemptOptions, sink: Parameters<Provider["generate"]>[3]) =>
      pushEvents(spec.stream(deployment, request, options), sink),
  });
}

/** What a test sees of a route: the model and provider of the last attempt, every attempt, whether a token went out. */
export interface RouteTrace {
  model?: CatalogueModel;
  provider: string;
  attempts: AttemptRecord[];
  committed: boolean;
}

export const freshTrace = (): RouteTrace => ({ provider: "", attempts: [], committed: false });

/** Runs a route and reads its pushed answer as events (deltas, then done), recording what the sink heard into `trace`. */
export function routeEvents(
  router: Router,
  models: readonly CatalogueModel[],
  request: (model: CatalogueModel) => ProviderRequest,
  trace: RouteTrace,
  options: RouteOptions,
): AsyncIterable<ProviderEvent> {
  const queue = new PushQueue<ProviderEvent>();
  router
    .run(models, request, options, {
      attemptStarted: (model, provider) => {
        trace.model = model;
        trace.provider = provider;
      },
      attemptEnded: (record) => trace.attempts.push(record),
      delta: (text) => {
        trace.committed = true;
        return queue.push({ type: "delta", text });
      },
      drained: () => queue.drained(),
    })
    .then(
      (result) => {
        trace.model = result.model;
        trace.provider = result.provider;
        queue.push({ type: "done", finishReason: result.finishReason, usage: result.usage });
        queue.end();
      },
      (err: unknown) => queue.fail(err),
    );
  return queue;
}
