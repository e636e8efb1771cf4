/** The providers the router can call, built once from the configuration. */
import type { Config } from "../config.js";
import type { ProviderDescriptor } from "./descriptor.js";
import { PROVIDERS } from "./descriptors.js";
import { createHttpFetch, type FetchFunction } from "./http.js";
import type { Provider } from "./provider.js";

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

/** The descriptors as one shape (a method's parameter is bivariant, so each fits the general type). */
const descriptors: readonly ProviderDescriptor[] = PROVIDERS;

/**
 * "sim" always, plus each real provider some deployment of the catalogue uses. Credentials are
 * looked up at call time, so a deployment whose key is missing fails with PROVIDER_AUTH_FAILED
 * (and the router falls back) instead of the service refusing to start.
 *
 * A real provider's adapter, and with it its vendor SDK, is imported only when the catalogue uses
 * it (the descriptor's create imports it): the OpenAI and Anthropic SDKs are ~6 MB of V8 heap
 * each, resident for nothing otherwise.
 */
export async function createProviders(config: Config, deps: ProviderDeps = {}): Promise<Map<string, Provider>> {
  const used = new Set<string>(["sim"]);
  for (const model of config.catalogue.models) for (const d of model.deployments) used.add(d.provider);

  let shared: FetchFunction | undefined = deps.fetch;
  const context = {
    credentials: config.credentials,
    fetch: (): FetchFunction => (shared ??= createHttpFetch().fetch),
    ...(deps.now ? { now: deps.now } : {}),
  };
  const settings: Readonly<Record<string, object>> = config.providers;

  const providers = new Map<string, Provider>();
  for (const d of descriptors) {
    if (!used.has(d.name)) continue;
    providers.set(d.name, await d.create(settings[d.name] ?? {}, context));
  }
  return providers;
}
