/** Token usage as the response cache and idempotency store keep it: plain JSON, the detail only when present. */
import type { TokenUsage } from "../core/types.js";

const DETAIL = ["cachedInputTokens", "cacheWriteInputTokens", "reasoningTokens"] as const;

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

/** A copy with only the fields of TokenUsage (a replay reports the same detail as the original call). */
export function toStoredUsage(u: TokenUsage): TokenUsage {
  const stored: TokenUsage = { inputTokens: u.inputTokens, outputTokens: u.outputTokens };
  for (const key of DETAIL) {
    const value = u[key];
    if (value !== undefined) stored[key] = value;
  }
  return stored;
}

/** Whether a value read back has that shape: two counts, and each detail absent (entries written before it existed) or a count. */
export function isStoredUsage(value: unknown): value is TokenUsage {
  if (typeof value !== "object" || value === null) return false;
  const u = value as Record<string, unknown>;
  return isCount(u["inputTokens"]) && isCount(u["outputTokens"]) && DETAIL.every((key) => u[key] === undefined || isCount(u[key]));
}
