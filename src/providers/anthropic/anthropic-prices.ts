/**
 * Anthropic list prices, USD per million tokens (input, output, cache read, cache write): the
 * vendor's published standard-tier prices as of 2025-10. A cache read costs a tenth of input
 * and a 5-minute cache write 1.25 times input (ANTHROPIC_CACHE_RATES, for models not listed);
 * 1-hour cache writes, batch and long-context prices are not modelled. Defaults for catalogue
 * entries that give no price.
 */
import { price as p, type CacheRates, type ModelPrice } from "../descriptor.js";

export const ANTHROPIC_CACHE_RATES: CacheRates = Object.freeze({ read: 0.1, write: 1.25 });

export const ANTHROPIC_PRICES: Readonly<Record<string, ModelPrice>> = Object.freeze({
  "claude-opus-4-1": p(15, 75, 1.5, 18.75),
  "claude-opus-4": p(15, 75, 1.5, 18.75),
  "claude-sonnet-4-5": p(3, 15, 0.3, 3.75),
  "claude-sonnet-4": p(3, 15, 0.3, 3.75),
  "claude-haiku-4-5": p(1, 5, 0.1, 1.25),
  "claude-3-7-sonnet": p(3, 15, 0.3, 3.75),
  "claude-3-5-sonnet": p(3, 15, 0.3, 3.75),
  "claude-3-5-haiku": p(0.8, 4, 0.08, 1),
  "claude-3-opus": p(15, 75, 1.5, 18.75),
  "claude-3-haiku": p(0.25, 1.25, 0.03, 0.3),
});
