import type { DeploymentConfig } from "../../src/config.js";
import { PushQueue } from "../../src/core/push-queue.js";
import { LlmError } from "../../src/errors/llm-error.js";
import type { AttemptOptions, Provider, ProviderEvent, ProviderRequest } from "../../src/providers/provider.js";

/**
 * A provider's pushed answer as pulled events (deltas, then done), for tests that read it with
 * `for await`. Leaving the loop early aborts the call (CANCELLED), as the router does when its
 * consumer goes away.
 */
export function providerEvents(provider: Provider, deployment: DeploymentConfig, request: ProviderRequest, options: AttemptOptions): AsyncIterable<ProviderEvent> {
  const controller = new AbortController();
  const parent = options.signal;
  const follow = () => controller.abort(parent.reason);
  if (parent.aborted) follow();
  else parent.addEventListener("abort", follow, { once: true });
  const queue = new PushQueue<ProviderEvent>({ onReturn: () => controller.abort(new LlmError("CANCELLED", "the consumer stopped reading")) });
  provider
    .generate(deployment, request, { ...options, signal: controller.signal }, { delta: (text) => queue.push({ type: "delta", text }), drained: () => queue.drained() })
    .then(
      (done) => {
        queue.push({ type: "done", ...done });
        queue.end();
      },
      (err: unknown) => queue.fail(err),
    )
    .finally(() => parent.removeEventListener("abort", follow));
  return queue;
}
