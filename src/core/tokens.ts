import type { ChatMessage } from "./types.js";

/**
 * A stated approximation of a tokenizer: one token per word, with its trailing
 * whitespace, plus one per separate punctuation mark; four tokens of framing per
 * message. Real tokenizers (per model) arrive with the real providers.
 */
const TOKEN = /[\p{L}\p{N}_]+\s*|[^\s\p{L}\p{N}_]\s*|\s+/gu;

export function splitTokens(text: string): string[] {
  return text.match(TOKEN) ?? [];
}

export function countTextTokens(text: string): number {
  let n = 0;
  TOKEN.lastIndex = 0;
  while (TOKEN.exec(text) !== null) n++;
  return n;
}

export const MESSAGE_OVERHEAD_TOKENS = 4;

export function countPromptTokens(system: string, messages: readonly ChatMessage[]): number {
  let n = system.length > 0 ? countTextTokens(system) + MESSAGE_OVERHEAD_TOKENS : 0;
  for (const m of messages) n += countTextTokens(m.content) + MESSAGE_OVERHEAD_TOKENS;
  return n;
}
