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

/** A price with both cache prices decided. */
export type FullPrice = Required<ModelPrice>;

/**
 * Fills in the cache prices a price leaves out. A cache read costs, in order: the price's own;
 * its input price times the listed model's ratio (a catalogue that sets only input and output
 * for a listed model keeps the vendor's discount); times the provider's published rate
 * (`cacheRates`, e.g. Anthropic's 0.1); or else the input price, which is what the call cost
 * before cache prices existed. A cache write likewise (Anthropic: 1.25 times input).
 */
export function withCachePrices(price: ModelPrice, listed: ModelPrice | undefined, provider: string): FullPrice {
  const rates = PROVIDERS.find((d) => d.name === provider)?.cacheRates;
  const fill = (own: number | undefined, listedOwn: number | undefined, rate: number | undefined): number => {
    if (own !== undefined) return own;
    if (listed !== undefined && listedOwn !== undefined && listed.inputPerMillion > 0) {
      return price.inputPerMillion * (listedOwn / listed.inputPerMillion);
    }
    return price.inputPerMillion * (rate ?? 1);
  };
  return {
    inputPerMillion: price.inputPerMillion,
    outputPerMillion: price.outputPerMillion,
    cachedInputPerMillion: fill(price.cachedInputPerMillion, listed?.cachedInputPerMillion, rates?.read),
    cacheWriteInputPerMillion: fill(price.cacheWriteInputPerMillion, listed?.cacheWriteInputPerMillion, rates?.write),
  };
}
