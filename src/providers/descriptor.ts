/**
 * What a provider brings to the service, in one object: its name (what a catalogue deployment
 * says in `provider:`), the environment variables it reads, its price defaults, and how its
 * adapter is built. descriptors.ts lists them; config, the registry and the default prices read
 * that list, so nothing else names a provider.
 */
import type { z } from "zod";
import type { FetchFunction } from "./http.js";
import type { Provider } from "./provider.js";

/**
 * USD per million tokens. Cached input is what a provider reads from its prompt cache (cheaper
 * than input), a cache write what it stores there (Anthropic bills it above input). Reasoning
 * tokens are output and cost the output price. An absent cache price is filled in by
 * default-prices.ts (`withCachePrices`).
 */
export interface ModelPrice {
  inputPerMillion: number;
  outputPerMillion: number;
  cachedInputPerMillion?: number;
  cacheWriteInputPerMillion?: number;
}

/** A vendor's published cache prices as multiples of the input price, the same for all its models. */
export interface CacheRates {
  /** A token read from the prompt cache, e.g. 0.1 (Anthropic). */
  read: number;
  /** A token written to the prompt cache, e.g. 1.25 (Anthropic, 5-minute cache). */
  write: number;
}

/** What building an adapter may use besides its own settings. */
export interface ProviderContext {
  /** Keys by environment variable name, for deployments' `apiKeyEnv` (read once by config). */
  credentials: ReadonlyMap<string, string>;
  /** The pooled HTTP client every vendor SDK shares; created on first call. */
  fetch: () => FetchFunction;
  /** Wall clock for Retry-After dates; absent: Date.now. */
  now?: () => number;
}

export interface ProviderDescriptor<Name extends string = string, Env extends z.ZodRawShape = z.ZodRawShape, Settings extends object = object> {
  readonly name: Name;
  /** The environment variables it reads, validated with the service's own (config.ts). */
  readonly env: Env;
  /** Its defaults from those variables; deployments may override them. */
  settings(env: z.output<z.ZodObject<Env>>): Settings;
  /** List prices of its well-known models, for catalogue entries that give none (router matching rules: default-prices.ts). */
  readonly prices: Readonly<Record<string, ModelPrice>>;
  /**
   * Its cache prices as multiples of input, for models its list does not price (and catalogue
   * prices that name only input and output); absent: a cached token costs what input costs.
   */
  readonly cacheRates?: CacheRates;
  /**
   * Builds the adapter. Import the adapter (and with it the vendor SDK) inside, with a dynamic
   * import: an SDK is megabytes of heap, loaded only when the catalogue uses the provider.
   */
  create(settings: Settings, context: ProviderContext): Promise<Provider>;
}

/** Declares a descriptor with its types inferred (name as a literal, settings from `settings`). */
export function defineProvider<const Name extends string, Env extends z.ZodRawShape, Settings extends object>(
  descriptor: ProviderDescriptor<Name, Env, Settings>,
): ProviderDescriptor<Name, Env, Settings> {
  return descriptor;
}

/** A price, frozen: input, output, and the cache read and write prices when the vendor lists them. */
export const price = (inputPerMillion: number, outputPerMillion: number, cachedInputPerMillion?: number, cacheWriteInputPerMillion?: number): ModelPrice =>
  Object.freeze({
    inputPerMillion,
    outputPerMillion,
    ...(cachedInputPerMillion !== undefined ? { cachedInputPerMillion } : {}),
    ...(cacheWriteInputPerMillion !== undefined ? { cacheWriteInputPerMillion } : {}),
  });
