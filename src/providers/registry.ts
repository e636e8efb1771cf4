/** The providers the router can call, built once from the configuration. */
import type { Config, DeploymentConfig } from "../config.js";
import { createHttpFetch, type FetchFunction } from "./http.js";
import type { Provider } from "./provider.js";
import { SimProvider } from "./sim/sim-provider.js";

export interface ProviderDeps {
  /**
   * The HTTP client every vendor SDK uses. Default: one pooled keep-alive fetch
   * (createHttpFetch) shared by all providers; pass your own to close it on shutdown or
   * to point tests somewhere else.
   */
  fetch?: FetchFunction;
  /** Wall clock for Retry-After dates. */
  now?: () => number;
}

type ProviderName = DeploymentConfig["provider"];

/**
 * "sim" always, plus each real provider some deployment of the catalogue uses. Credentials are
 * looked up at call time, so a deployment whose key is missing fails with PROVIDER_AUTH_FAILED
 * (and the router falls back) instead of the service refusing to start.
 *
 * A real provider's adapter, and with it its vendor SDK, is imported only when the catalogue uses
 * it: the OpenAI and Anthropic SDKs are ~6 MB of V8 heap each, resident for nothing otherwise.
 */
export async function createProviders(config: Config, deps: ProviderDeps = {}): Promise<Map<string, Provider>> {
  const used = new Set<ProviderName>(["sim"]);
  for (const model of config.catalogue.models) for (const d of model.deployments) used.add(d.provider);

  let shared: FetchFunction | undefined = deps.fetch;
  const fetch = (): FetchFunction => (shared ??= createHttpFetch().fetch);
  const clock = deps.now ? { now: deps.now } : {};

  const providers = new Map<string, Provider>();
  for (const name of used) {
    switch (name) {
      case "sim":
        providers.set(name, new SimProvider());
        break;
      case "openai": {
        const { OpenAiProvider } = await import("./openai/openai-provider.js");
        providers.set(name, new OpenAiProvider({ defaults: config.providers.openai, credentials: config.credentials, fetch: fetch(), ...clock }));
        break;
      }
      case "anthropic": {
        const { AnthropicProvider } = await import("./anthropic/anthropic-provider.js");
        providers.set(
          name,
          new AnthropicProvider({ defaults: config.providers.anthropic, credentials: config.credentials, fetch: fetch(), ...clock }),
        );
        break;
      }
      case "ollama": {
        const { OllamaProvider } = await import("./ollama/ollama-provider.js");
        providers.set(name, new OllamaProvider({ defaults: config.providers.ollama, credentials: config.credentials, fetch: fetch(), ...clock }));
        break;
      }
      default: {
        const unknown: never = name;
        throw new Error(`no adapter for provider ${String(unknown)}`);
      }
    }
  }
  return providers;
}
