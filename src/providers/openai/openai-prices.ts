/**
 * OpenAI list prices, USD per million tokens (input, output): the vendor's published
 * standard-tier prices as of 2025-10; batch, cached-input, priority and long-context
 * surcharges are not modelled. Defaults for catalogue entries that give no price.
 */
import { price as p, type ModelPrice } from "../descriptor.js";

export const OPENAI_PRICES: Readonly<Record<string, ModelPrice>> = Object.freeze({
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
});
