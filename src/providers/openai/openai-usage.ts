/** OpenAI's usage object → ours, with the detail it reports. */
import type { CompletionUsage } from "openai/resources/completions";
import type { TokenUsage } from "../../core/types.js";

/**
 * prompt_tokens already includes `prompt_tokens_details.cached_tokens` (read from the prompt
 * cache), and completion_tokens `completion_tokens_details.reasoning_tokens`: they are kept as
 * parts, never added. OpenAI reports no cache writes. A detail that is absent or 0 is left out.
 */
export function openAiUsage(u: CompletionUsage): TokenUsage {
  const usage: TokenUsage = { inputTokens: u.prompt_tokens, outputTokens: u.completion_tokens };
  const cached = u.prompt_tokens_details?.cached_tokens;
  if (typeof cached === "number" && cached > 0) usage.cachedInputTokens = cached;
  const reasoning = u.completion_tokens_details?.reasoning_tokens;
  if (typeof reasoning === "number" && reasoning > 0) usage.reasoningTokens = reasoning;
  return usage;
}
