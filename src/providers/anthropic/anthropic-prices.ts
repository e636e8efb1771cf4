/**
 * Anthropic list prices, USD per million tokens (input, output): the vendor's published
 * standard-tier prices as of 2025-10; batch, cached-input and long-context surcharges are not
 * modelled. Defaults for catalogue entries that give no price.
 */
import { price as p, type ModelPrice } from "../descriptor.js";

export const ANTHROPIC_PRICES: Readonly<Record<string, ModelPrice>> = Object.freeze({
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
