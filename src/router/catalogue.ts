import type { TokenizerName } from "../core/token-counter.js";
import type { TokenUsage } from "../core/types.js";
import type { CatalogueConfig, DeploymentConfig, ModelConfig, RoutingConfig } from "../config.js";

/** A model as the router sees it: configuration plus integer prices. */
export interface CatalogueModel {
  id: string;
  aliases: string[];
  contextWindow: number;
  maxOutputTokens: number;
  /** Billionths of a USD per million tokens. */
  inputPriceNanosPerMillion: bigint;
  outputPriceNanosPerMillion: bigint;
  /** Input read from the provider's prompt cache. */
  cachedInputPriceNanosPerMillion: bigint;
  /** Input written to the provider's prompt cache. */
  cacheWritePriceNanosPerMillion: bigint;
  capabilities: string[];
  tokenizer: TokenizerName;
  deployments: DeploymentConfig[];
  fallbacks: string[];
}

function nanos(usd: number): bigint {
  return BigInt(Math.round(usd * 1e9));
}

function toModel(m: ModelConfig): CatalogueModel {
  // The catalogue's parser has filled in a provider's default price where the file names none.
  const price = m.price ?? { inputPerMillion: 0, outputPerMillion: 0 };
  return {
    id: m.id,
    aliases: m.aliases,
    contextWindow: m.contextWindow,
    maxOutputTokens: m.maxOutputTokens,
    inputPriceNanosPerMillion: nanos(price.inputPerMillion),
    outputPriceNanosPerMillion: nanos(price.outputPerMillion),
    cachedInputPriceNanosPerMillion: nanos(price.cachedInputPerMillion ?? price.inputPerMillion),
    cacheWritePriceNanosPerMillion: nanos(price.cacheWriteInputPerMillion ?? price.inputPerMillion),
    capabilities: m.capabilities,
    tokenizer: m.tokenizer ?? (m.deployments.every((d) => d.provider === "sim") ? "approx" : "o200k"),
    deployments: m.deployments,
    fallbacks: m.fallbacks,
  };
}

/** Resolves model ids and aliases; prices a usage. */
export class Catalogue {
  private readonly byName = new Map<string, CatalogueModel>();
  readonly models: readonly CatalogueModel[];
  readonly routing: RoutingConfig;

  constructor(config: CatalogueConfig) {
    this.routing = config.routing;
    this.models = config.models.map(toModel);
    for (const model of this.models) {
      for (const name of [model.id, ...model.aliases]) this.byName.set(name, model);
    }
  }

  resolve(name: string): CatalogueModel | undefined {
    return this.byName.get(name);
  }
}

/**
 * Cost in billionths of a USD, rounded half up; integer arithmetic only. Each part of the input
 * costs its own price: tokens read from the prompt cache the cached price, tokens written to it
 * the cache write price, the rest the input price (cached counts are parts of inputTokens, and a
 * count past what is left is cut to it). Reasoning tokens are part of outputTokens (OpenAI's
 * completion_tokens includes them): they cost output, once.
 */
export function costOf(model: CatalogueModel, usage: TokenUsage): bigint {
  const input = BigInt(Math.max(0, usage.inputTokens));
  const cachedRead = min(BigInt(Math.max(0, usage.cachedInputTokens ?? 0)), input);
  const cacheWrite = min(BigInt(Math.max(0, usage.cacheWriteInputTokens ?? 0)), input - cachedRead);
  const total =
    (input - cachedRead - cacheWrite) * model.inputPriceNanosPerMillion +
    cachedRead * model.cachedInputPriceNanosPerMillion +
    cacheWrite * model.cacheWritePriceNanosPerMillion +
    BigInt(usage.outputTokens) * model.outputPriceNanosPerMillion;
  return (total + 500_000n) / 1_000_000n;
}

function min(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}
