/**
 * List prices of well-known models, USD per million tokens (input, output), for catalogue
 * entries that give none. The operator's catalogue always wins: these are defaults, not truth,
 * and vendors change prices. Figures are the vendors' published standard-tier list prices
 * (OpenAI and Anthropic pricing pages) as of 2025-10; batch, cached-input, priority and
 * long-context surcharges are not modelled.
 */

export interface ModelPrice {
  inputPerMillion: number;
  outputPerMillion: number;
}

const p = (inputPerMillion: number, outputPerMillion: number): ModelPrice => Object.freeze({ inputPerMillion, outputPerMillion });

export const DEFAULT_PRICES: Readonly<Record<string, ModelPrice>> = Object.freeze({
  // OpenAI
  "gpt-5": p(1.25, 10),
  "gpt-5-mini": p(0.25, 2),
  "gpt-5-nano": p(0.05, 0.4),
  "gpt-4.1": p(2, 8),
  "gpt-4.1-mini": p(0.4, 1.6),
  "gpt-4.1-nano": p(0.1, 0.4),
  "gpt-4o": p(2.5, 10),
  "gpt-4o-mini": p(0.15, 0.6),
  "gpt-4-turbo": p(10, 30),
  "gpt-3.5-turbo": p(0.5, 1.5),
  o1: p(15, 60),
  o3: p(2, 8),
  "o3-mini": p(1.1, 4.4),
  "o4-mini": p(1.1, 4.4),
  // Anthropic
  "claude-opus-4-1": p(15, 75),
  "claude-opus-4": p(15, 75),
  "claude-sonnet-4-5": p(3, 15),
  "claude-sonnet-4": p(3, 15),
  "claude-haiku-4-5": p(1, 5),
  "claude-3-7-sonnet": p(3, 15),
  "claude-3-5-sonnet": p(3, 15),
  "claude-3-5-haiku": p(0.8, 4),
  "claude-3-opus": p(15, 75),
  "claude-3-haiku": p(0.25, 1.25),
});

/** What may follow a known name and still be the same model: a snapshot date or "latest". */
const SNAPSHOT_SUFFIX = /^-(\d{4}-\d{2}-\d{2}|\d{8}|\d{4}|latest)$/;

/**
 * The default price of an upstream model name, or undefined for a model the table does not
 * know (local models, fine-tunes, variants such as o1-mini or gpt-4o-realtime, other vendors):
 * the catalogue must say. A known name matches itself and its dated snapshots and aliases
 * ("gpt-4o-2024-08-06", "claude-sonnet-4-20250514", "claude-3-5-haiku-latest",
 * "gpt-3.5-turbo-0125"), nothing else, so a variant never gets its family's price.
 * A router prefix ("openai/gpt-4o" on OpenRouter) is ignored.
 */
export function priceFor(model: string): ModelPrice | undefined {
  const name = model.slice(model.lastIndexOf("/") + 1).toLowerCase();
  const exact = DEFAULT_PRICES[name];
  if (exact !== undefined) return exact;
  for (const known in DEFAULT_PRICES) {
    if (name.startsWith(known) && SNAPSHOT_SUFFIX.test(name.slice(known.length))) return DEFAULT_PRICES[known];
  }
  return undefined;
}
