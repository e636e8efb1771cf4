/**
 * OpenAI list prices, USD per million tokens (input, output, cached input): the vendor's
 * published standard-tier prices as of 2025-10. Cached input is a fraction of input that depends
 * on the family (gpt-4o and o1: half; gpt-4.1, o3 and o4-mini: a quarter; gpt-5: a tenth); models
 * without prompt caching (gpt-4-turbo, gpt-3.5-turbo) list none, so a cached token costs input.
 * OpenAI bills no cache writes. Batch, priority and long-context prices are not modelled.
 * Defaults for catalogue entries that give no price.
 */
import { price as p, type ModelPrice } from "../descriptor.js";

export const OPENAI_PRICES: Readonly<Record<string, ModelPrice>> = Object.freeze({
  "gpt-5": p(1.25, 10, 0.125),
  "gpt-5-mini": p(0.25, 2, 0.025),
  "gpt-5-nano": p(0.05, 0.4, 0.005),
  "gpt-4.1": p(2, 8, 0.5),
  "gpt-4.1-mini": p(0.4, 1.6, 0.1),
  "gpt-4.1-nano": p(0.1, 0.4, 0.025),
  "gpt-4o": p(2.5, 10, 1.25),
  "gpt-4o-mini": p(0.15, 0.6, 0.075),
  "gpt-4-turbo": p(10, 30),
  "gpt-3.5-turbo": p(0.5, 1.5),
  o1: p(15, 60, 7.5),
  o3: p(2, 8, 0.5),
  "o3-mini": p(1.1, 4.4, 0.55),
  "o4-mini": p(1.1, 4.4, 0.275),
  // Embeddings: input only.
  "text-embedding-3-small": p(0.02, 0),
  "text-embedding-3-large": p(0.13, 0),
  "text-embedding-ada-002": p(0.1, 0),
});
