/**
 * The default price of an upstream model, from the providers' price lists (descriptors.ts), for
 * catalogue entries that give none. The operator's catalogue always wins: these are defaults,
 * not truth, and vendors change prices.
 */
import type { ModelPrice } from "./descriptor.js";
import { PROVIDERS } from "./descriptors.js";

/** Every provider's list in one table. A model is looked up by name, whoever serves it (OpenRouter serves Anthropic's). */
const PRICES: ReadonlyMap<string, ModelPrice> = new Map(PROVIDERS.flatMap((d) => Object.entries(d.prices)));

/** What may follow a known name and still be the same model: a snapshot date or "latest". */
const SNAPSHOT_SUFFIX = /^-(\d{4}-\d{2}-\d{2}|\d{8}|\d{4}|latest)$/;

/**
 * The default price of an upstream model name, or undefined for a model no list knows (local
 * models, fine-tunes, variants such as o1-mini or gpt-4o-realtime, other vendors): the catalogue
 * must say. A known name matches itself and its dated snapshots and aliases
 * ("gpt-4o-2024-08-06", "claude-sonnet-4-20250514", "claude-3-5-haiku-latest",
 * "gpt-3.5-turbo-0125"), nothing else, so a variant never gets its family's price.
 * A router prefix ("openai/gpt-4o" on OpenRouter) is ignored.
 */
export function defaultPriceFor(model: string): ModelPrice | undefined {
  const name = model.slice(model.lastIndexOf("/") + 1).toLowerCase();
  const exact = PRICES.get(name);
  if (exact !== undefined) return exact;
  for (const [known, price] of PRICES) {
    if (name.startsWith(known) && SNAPSHOT_SUFFIX.test(name.slice(known.length))) return price;
  }
  return undefined;
}
