import { createRequire } from "node:module";
import { countPromptTokens, MESSAGE_OVERHEAD_TOKENS } from "./tokens.js";
import type { ChatMessage } from "./types.js";

/**
 * How a model's prompt is counted before any upstream call:
 * - "o200k": OpenAI's o200k_base BPE (gpt-4o, gpt-4.1, o-series), exact for
 *   those models and a close stated approximation for Anthropic and Ollama
 *   models, whose tokenizers are not published as libraries;
 * - "approx": one token per word or punctuation mark (the sim's own rule).
 */
export type TokenizerName = "o200k" | "approx";

interface Encoding {
  countTokens(text: string): number;
}

const require = createRequire(import.meta.url);

export class TokenCounter {
  private o200k: Encoding | undefined;

  /** Loads the encodings the given tokenizers need (o200k takes ~0.4 s and ~90 MB, so only when used). */
  constructor(needed: Iterable<TokenizerName>) {
    if ([...needed].includes("o200k")) {
      // gpt-tokenizer's CommonJS build loads synchronously; the ESM build would make admission async.
      this.o200k = require("gpt-tokenizer/cjs/encoding/o200k_base") as Encoding;
    }
  }

  count(tokenizer: TokenizerName, system: string, messages: readonly ChatMessage[]): number {
    const enc = tokenizer === "o200k" ? this.o200k : undefined;
    if (!enc) return countPromptTokens(system, messages);
    let n = system.length > 0 ? enc.countTokens(system) + MESSAGE_OVERHEAD_TOKENS : 0;
    for (const m of messages) n += enc.countTokens(m.content) + MESSAGE_OVERHEAD_TOKENS;
    return n;
  }
}
