/**
 * The model catalogue (LLM_CONFIG, YAML or JSON, or the built-in sim catalogue): models, their
 * deployments on providers, routing settings. Validated here, defaults filled in.
 */
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { defaultPriceFor, withCachePrices } from "../providers/default-prices.js";
import { PROVIDER_NAMES } from "../providers/descriptors.js";
import { ConfigError, describeIssues } from "./config-error.js";
import { int } from "./env-fields.js";

const DeploymentSchema = z.strictObject({
  /** One of the providers of providers/descriptors.ts. */
  provider: z.enum(PROVIDER_NAMES),
  /** The model name the provider knows. */
  model: z.string().min(1),
  weight: int(1, 1000).default(1),
  /** Overrides the provider's base URL (OPENAI_BASE_URL, ANTHROPIC_BASE_URL, OLLAMA_HOST…) for this deployment. */
  baseUrl: z.url().optional(),
  /** Name of the environment variable holding this deployment's API key (a credentials reference; never the key itself). */
  apiKeyEnv: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, "must be an environment variable name").optional(),
  /** Provider-specific knobs (the sim's latency, for one). */
  options: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
});

const ModelFields = z.strictObject({
  id: z.string().min(1).max(128),
  aliases: z.array(z.string().min(1)).default([]),
  contextWindow: int(1, 100_000_000),
  maxOutputTokens: int(1, 10_000_000),
  /**
   * USD per million tokens; when absent, the providers' default price for the upstream model (or
   * none: 0). Cached input (read from the provider's prompt cache) and cache writes, when absent,
   * follow the listed model's or the provider's ratio to input, else cost what input costs
   * (default-prices.ts, withCachePrices).
   */
  price: z
    .strictObject({
      inputPerMillion: z.number().min(0).max(100_000),
      outputPerMillion: z.number().min(0).max(100_000),
      cachedInputPerMillion: z.number().min(0).max(100_000).optional(),
      cacheWriteInputPerMillion: z.number().min(0).max(100_000).optional(),
    })
    .optional(),
  capabilities: z.array(z.string()).default(["chat", "streaming"]),
  /** Pre-flight token counting: "o200k" (default for real providers) or "approx" (default for sim). */
  tokenizer: z.enum(["o200k", "approx"]).optional(),
  deployments: z.array(DeploymentSchema).min(1),
  fallbacks: z.array(z.string()).default([]),
});

type ModelFields = z.output<typeof ModelFields>;

/**
 * A model without a price gets its first deployment's upstream model's default price, else its
 * id's, if a provider lists one; a price, given or listed, gets its cache prices filled in.
 */
function withDefaultPrice(m: ModelFields): ModelFields {
  const listed = defaultPriceFor(m.deployments[0]?.model ?? m.id) ?? defaultPriceFor(m.id);
  const price = m.price ?? listed;
  return price === undefined ? m : { ...m, price: withCachePrices(price, listed, m.deployments[0]?.provider ?? "") };
}

const ModelSchema = ModelFields.transform(withDefaultPrice);

const RoutingSchema = z.strictObject({
  /** Upper bound on one upstream attempt; the time left before the deadline bounds it too. */
  attemptTimeoutMs: int(1, 3_600_000).default(30_000),
  /** Attempts per deployment (1 = no retry) for retryable reasons. */
  maxAttempts: int(1, 10).default(3),
  backoffBaseMs: int(0, 60_000).default(100),
  backoffCapMs: int(0, 300_000).default(2_000),
  /** An attempt is not started with less time than this left: it could not finish. */
  minAttemptMs: int(0, 60_000).default(5),
  breaker: z
    .strictObject({
      failureRatio: z.number().gt(0).max(1).default(0.5),
      minCalls: int(1, 100_000).default(5),
      windowMs: int(100, 3_600_000).default(30_000),
      openMs: int(1, 3_600_000).default(10_000),
    })
    .prefault({}),
  /**
   * Retry throttling per deployment (gRFC A6): a bucket of maxTokens; a failed attempt takes 1, a
   * success puts tokenRatio back; retries only while more than half is left.
   */
  retryBudget: z
    .strictObject({
      maxTokens: z.number().gt(0).max(1000).default(10),
      tokenRatio: z.number().gt(0).max(1000).default(0.1),
    })
    .prefault({}),
});

const CatalogueSchema = z.strictObject({
  routing: RoutingSchema.prefault({}),
  models: z.array(ModelSchema).min(1),
});

export type RoutingConfig = z.infer<typeof RoutingSchema>;
export type DeploymentConfig = z.infer<typeof DeploymentSchema>;
export type ModelConfig = z.infer<typeof ModelSchema>;
export type CatalogueConfig = z.infer<typeof CatalogueSchema>;

/** Validates a catalogue given as plain data (defaults filled in); throws a ZodError. */
export function parseCatalogue(raw: unknown): CatalogueConfig {
  return CatalogueSchema.parse(raw);
}

/** Reads, parses and validates the catalogue file; throws ConfigError naming LLM_CONFIG. */
export function readCatalogue(path: string): CatalogueConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(`LLM_CONFIG: cannot read ${path}: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = path.endsWith(".json") ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new ConfigError(`LLM_CONFIG: ${path} is not valid ${path.endsWith(".json") ? "JSON" : "YAML"}: ${(err as Error).message}`);
  }
  const parsed = CatalogueSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(describeIssues(`LLM_CONFIG (${path}) `, parsed.error));
  return parsed.data;
}

/** Names must be unique across ids and aliases, and fallbacks must name known models. */
export function checkCatalogue(catalogue: CatalogueConfig, source: string): void {
  const seen = new Set<string>();
  for (const [i, model] of catalogue.models.entries()) {
    for (const name of [model.id, ...model.aliases]) {
      if (seen.has(name)) throw new ConfigError(`LLM_CONFIG (${source}) models.${i}: duplicate model name or alias "${name}"`);
      seen.add(name);
    }
  }
  for (const [i, model] of catalogue.models.entries()) {
    for (const fb of model.fallbacks) {
      if (!seen.has(fb)) throw new ConfigError(`LLM_CONFIG (${source}) models.${i}.fallbacks: unknown model "${fb}"`);
    }
  }
}

/** The keys the deployments name by `apiKeyEnv`, from the given environment; a missing one is a ConfigError. */
export function catalogueCredentials(
  catalogue: CatalogueConfig,
  source: string,
  env: Readonly<Record<string, string | undefined>>,
): Map<string, string> {
  const credentials = new Map<string, string>();
  for (const [i, model] of catalogue.models.entries()) {
    for (const [j, d] of model.deployments.entries()) {
      if (d.apiKeyEnv === undefined) continue;
      const value = env[d.apiKeyEnv];
      if (value === undefined || value.trim() === "") {
        throw new ConfigError(`LLM_CONFIG (${source}) models.${i}.deployments.${j}.apiKeyEnv: ${d.apiKeyEnv} is not set`);
      }
      credentials.set(d.apiKeyEnv, value.trim());
    }
  }
  return credentials;
}
