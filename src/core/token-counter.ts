import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { countPromptTokens, countTextTokens, MESSAGE_OVERHEAD_TOKENS } from "./tokens.js";
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
  countTokens(text: string, options?: { disallowedSpecial?: Set<string> }): number;
}

/**
 * A prompt is text: "<|endoftext|>" in it is counted as the characters it is, as the vendor
 * counts it, never refused (gpt-tokenizer's default throws on special-token text, which would
 * fail the call for what a user typed).
 */
const PLAIN_TEXT = { disallowedSpecial: new Set<string>() };

const require = createRequire(import.meta.url);

/** A rank table as gpt-tokenizer's encoder takes it: entry i is token i, as text when its bytes are UTF-8 text, else as bytes. */
type MergeableRanks = (string | number[])[];

/**
 * o200k_base's ranks, read from the package's own tiktoken file (`base64-bytes rank` per line).
 * The package's ready-made table is a 2.4 MB JavaScript array literal whose compilation leaves
 * ~19 MB of malloc heap behind for good (measured: +48 MB resident with it, +29 MB this way);
 * the table built here is the same, entry for entry (tested). A token is text when its bytes
 * decode as UTF-8 and encode back to the same bytes (TextDecoder drops a leading BOM, so a token
 * that starts with one stays bytes, as in the package's table).
 */
export function loadO200kRanks(): MergeableRanks {
  const file = readFileSync(require.resolve("gpt-tokenizer/data/o200k_base.tiktoken"), "utf8");
  const decoder = new TextDecoder("utf-8");
  const encoder = new TextEncoder();
  const ranks: MergeableRanks = [];
  let start = 0;
  while (start < file.length) {
    let end = file.indexOf("\n", start);
    if (end === -1) end = file.length;
    const space = file.indexOf(" ", start);
    if (space !== -1 && space < end) {
      const rank = Number(file.slice(space + 1, end));
      if (rank !== ranks.length) throw new Error(`o200k_base.tiktoken: rank ${rank} where ${ranks.length} was expected`);
      const bytes = Buffer.from(file.slice(start, space), "base64");
      const text = decoder.decode(bytes);
      ranks.push(Buffer.compare(encoder.encode(text), bytes) === 0 ? text : Array.from(bytes));
    }
    start = end + 1;
  }
  return ranks;
}

interface GptEncodingModule {
  GptEncoding: { getEncodingApi(name: "o200k_base", ranks: () => MergeableRanks): Encoding };
}

export class TokenCounter {
  private o200k: Encoding | undefined;

  /** Loads the encodings the given tokenizers need (o200k takes ~0.5 s and ~30 MB, so only when used). */
  constructor(needed: Iterable<TokenizerName>) {
    if ([...needed].includes("o200k")) {
      // gpt-tokenizer's CommonJS build loads synchronously; the ESM build would make admission async.
      const { GptEncoding } = require("gpt-tokenizer/cjs/GptEncoding") as GptEncodingModule;
      this.o200k = GptEncoding.getEncodingApi("o200k_base", loadO200kRanks);
    }
  }

  count(tokenizer: TokenizerName, system: string, messages: readonly ChatMessage[]): number {
    const enc = tokenizer === "o200k" ? this.o200k : undefined;
    if (!enc) return countPromptTokens(system, messages);
    let n = system.length > 0 ? enc.countTokens(system, PLAIN_TEXT) + MESSAGE_OVERHEAD_TOKENS : 0;
    for (const m of messages) n += enc.countTokens(m.content, PLAIN_TEXT) + MESSAGE_OVERHEAD_TOKENS;
    return n;
  }

  /** Plain texts, as an embeddings call sends them: no message framing. */
  countTexts(tokenizer: TokenizerName, texts: readonly string[]): number {
    const enc = tokenizer === "o200k" ? this.o200k : undefined;
    let n = 0;
    for (const text of texts) n += enc ? enc.countTokens(text, PLAIN_TEXT) : countTextTokens(text);
    return n;
  }
}
