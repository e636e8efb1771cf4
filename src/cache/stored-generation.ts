import type { FinishReason, GenerationResult, TokenUsage } from "../core/types.js";
import { isStoredUsage, toStoredUsage } from "./stored-usage.js";

/** A GenerationResult as JSON can hold it: the cost (a bigint) as a decimal string. */
export interface StoredGeneration {
  id: string;
  model: string;
  provider: string;
  text: string;
  finishReason: FinishReason;
  usage: TokenUsage;
  costUsdNanos: string;
  cached: boolean;
  attempts: number;
}

export function toStoredGeneration(result: GenerationResult): StoredGeneration {
  return {
    id: result.id,
    model: result.model,
    provider: result.provider,
    text: result.text,
    finishReason: result.finishReason,
    usage: toStoredUsage(result.usage),
    costUsdNanos: result.costUsdNanos.toString(),
    cached: result.cached,
    attempts: result.attempts,
  };
}

export function fromStoredGeneration(stored: StoredGeneration): GenerationResult {
  return { ...stored, usage: toStoredUsage(stored.usage), costUsdNanos: BigInt(stored.costUsdNanos) };
}

const FINISH_REASONS: ReadonlySet<unknown> = new Set<FinishReason>(["stop", "length", "content_filter", "unspecified"]);

/** Whether a value read back from a store has the shape toStoredGeneration writes. */
export function isStoredGeneration(value: unknown): value is StoredGeneration {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v["id"] === "string" &&
    typeof v["model"] === "string" &&
    typeof v["provider"] === "string" &&
    typeof v["text"] === "string" &&
    FINISH_REASONS.has(v["finishReason"]) &&
    isStoredUsage(v["usage"]) &&
    typeof v["costUsdNanos"] === "string" &&
    /^-?\d+$/.test(v["costUsdNanos"]) &&
    typeof v["cached"] === "boolean" &&
    typeof v["attempts"] === "number"
  );
}
