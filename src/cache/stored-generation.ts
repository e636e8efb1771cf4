import type { FinishReason, GenerationResult } from "../core/types.js";

/** A GenerationResult as JSON can hold it: the cost (a bigint) as a decimal string. */
export interface StoredGeneration {
  id: string;
  model: string;
  provider: string;
  text: string;
  finishReason: FinishReason;
  usage: { inputTokens: number; outputTokens: number };
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
    usage: { inputTokens: result.usage.inputTokens, outputTokens: result.usage.outputTokens },
    costUsdNanos: result.costUsdNanos.toString(),
    cached: result.cached,
    attempts: result.attempts,
  };
}

export function fromStoredGeneration(stored: StoredGeneration): GenerationResult {
  return { ...stored, usage: { ...stored.usage }, costUsdNanos: BigInt(stored.costUsdNanos) };
}

const FINISH_REASONS: ReadonlySet<unknown> = new Set<FinishReason>(["stop", "length", "content_filter", "unspecified"]);

/** Whether a value read back from a store has the shape toStoredGeneration writes. */
export function isStoredGeneration(value: unknown): value is StoredGeneration {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  const usage = v["usage"] as Record<string, unknown> | null | undefined;
  return (
    typeof v["id"] === "string" &&
    typeof v["model"] === "string" &&
    typeof v["provider"] === "string" &&
    typeof v["text"] === "string" &&
    FINISH_REASONS.has(v["finishReason"]) &&
    typeof usage === "object" &&
    usage !== null &&
    typeof usage["inputTokens"] === "number" &&
    typeof usage["outputTokens"] === "number" &&
    typeof v["costUsdNanos"] === "string" &&
    /^-?\d+$/.test(v["costUsdNanos"]) &&
    typeof v["cached"] === "boolean" &&
    typeof v["attempts"] === "number"
  );
}
