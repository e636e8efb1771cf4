/** Anthropic's usage (message_start's, then message_delta's cumulative updates) → ours. */
import type { MessageDeltaUsage, Usage } from "@anthropic-ai/sdk/resources/messages/messages";
import type { TokenUsage } from "../../core/types.js";

/** The fields both event kinds share; message_delta may leave the input counts null (unchanged). */
type WireUsage = Pick<MessageDeltaUsage, "output_tokens"> &
  Partial<Pick<MessageDeltaUsage | Usage, "input_tokens" | "cache_read_input_tokens" | "cache_creation_input_tokens" | "output_tokens_details">>;

/**
 * Anthropic's input_tokens excludes what was read from the prompt cache
 * (cache_read_input_tokens) and written to it (cache_creation_input_tokens): our inputTokens is
 * the sum, with the two as its parts. output_tokens includes thinking, which
 * output_tokens_details.thinking_tokens counts. A count `u` leaves null keeps its value in
 * `before` (message_delta repeats only what changed); a detail that is 0 is left out.
 */
export function anthropicUsage(u: WireUsage, before?: TokenUsage): TokenUsage {
  const read = u.cache_read_input_tokens ?? before?.cachedInputTokens ?? 0;
  const write = u.cache_creation_input_tokens ?? before?.cacheWriteInputTokens ?? 0;
  const uncached = u.input_tokens ?? (before ? before.inputTokens - (before.cachedInputTokens ?? 0) - (before.cacheWriteInputTokens ?? 0) : 0);
  const usage: TokenUsage = { inputTokens: uncached + read + write, outputTokens: u.output_tokens };
  if (read > 0) usage.cachedInputTokens = read;
  if (write > 0) usage.cacheWriteInputTokens = write;
  const thinking = u.output_tokens_details?.thinking_tokens ?? before?.reasoningTokens ?? 0;
  if (thinking > 0) usage.reasoningTokens = thinking;
  return usage;
}
