import type { TokenizerName } from "../core/token-counter.js";
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

/** Cost in billionths of a USD, rounded half up; integer arithmetic only. */
export function costOf(model: CatalogueModel, inputTokens: number, outputTokens: number): bigint {
  const total =
    BigInt(inputTokens) * model.inputPriceNanosPerMillion + BigInt(outputTokens) * model.outputPriceNanosPerMillion;
  return (total + 500_000n) / 1_000_000n;
}
