/**
 * Deterministic completions and the one counting rule the simulator uses everywhere:
 * a token is a word (a run of non-whitespace, as JavaScript's `\s` defines whitespace).
 * Prompt and completion are counted the same way, so usage is honest for what was sent.
 */
import type { ChatRequest, Completion, FinishReason, UsageDetail } from "./dialect.js";
import { jsonText, jsonTokens, type JsonMode } from "./json-output.js";
import type { TextMode } from "./types.js";
import { fnv1a, mulberry32 } from "./prng.js";

const LOREM = (
  "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore " +
  "magna aliqua enim ad minim veniam quis nostrud exercitation ullamco laboris nisi aliquip ex ea commodo consequat " +
  "duis aute irure in reprehenderit voluptate velit esse cillum fugiat nulla pariatur excepteur sint occaecat " +
  "cupidatat non proident sunt culpa qui officia deserunt mollit anim id est laborum"
).split(" ");

// Precomputed once: each word as a middle token ("word ") and as the last one ("word"),
// raw and as a JSON string literal, so a lorem completion allocates only its arrays.
const LOREM_MID = LOREM.map((w) => `${w} `);
const LOREM_MID_QUOTED = LOREM_MID.map((w) => JSON.stringify(w));
const LOREM_LAST_QUOTED = LOREM.map((w) => JSON.stringify(w));

/** Default natural length of a lorem completion: 16–63 words, seeded by the prompt. */
const LOREM_MIN = 16;
const LOREM_SPREAD = 48;

/** Whitespace exactly as JavaScript's `\s` defines it. */
function isSpace(c: number): boolean {
  return (
    c === 32 ||
    (c >= 9 && c <= 13) ||
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000 ||
    c === 0xfeff
  );
}

/** The simulator's token count: the number of words in `text`. */
export function countWords(text: string): number {
  let n = 0;
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const space = isSpace(text.charCodeAt(i));
    if (!space && !inWord) n++;
    inWord = !space;
  }
  return n;
}

export function countPromptWords(texts: readonly string[]): number {
  let n = 0;
  for (const t of texts) n += countWords(t);
  return n;
}

/** FNV-1a (32 bit) over the model and every prompt text, a zero byte after each. */
function seedOf(model: string, texts: readonly string[]): number {
  return fnv1a([model, ...texts].map((t) => `${t}\0`).join(""));
}

interface Draft {
  tokens: string[];
  quoted: string[];
}

function lorem(request: ChatRequest, outputTokens: number | undefined, limit: number): { draft: Draft; natural: number } {
  const random = mulberry32(seedOf(request.model, request.promptTexts));
  const natural = outputTokens ?? LOREM_MIN + Math.floor(random() * LOREM_SPREAD);
  const n = Math.min(natural, limit);
  const tokens = new Array<string>(n);
  const quoted = new Array<string>(n);
  for (let i = 0; i < n; i++) {
    const w = Math.floor(random() * LOREM.length);
    const last = i === n - 1;
    tokens[i] = last ? (LOREM[w] as string) : (LOREM_MID[w] as string);
    quoted[i] = last ? (LOREM_LAST_QUOTED[w] as string) : (LOREM_MID_QUOTED[w] as string);
  }
  return { draft: { tokens, quoted }, natural };
}

/** JSON mode: the format's deterministic answer, its words as tokens (outputTokens does not apply). */
function json(request: ChatRequest, mode: JsonMode, limit: number): { draft: Draft; natural: number } {
  const format = request.jsonFormat as NonNullable<ChatRequest["jsonFormat"]>;
  const all = jsonTokens(jsonText(format, mode, mulberry32(seedOf(request.model, request.promptTexts))));
  const tokens = all.slice(0, Math.min(all.length, limit));
  return { draft: { tokens, quoted: tokens.map((t) => JSON.stringify(t)) }, natural: all.length };
}

function echo(words: readonly string[], outputTokens: number | undefined, limit: number): { draft: Draft; natural: number } {
  // Cycles the words when `outputTokens` asks for more than the message has.
  const natural = outputTokens ?? words.length;
  const n = Math.min(natural, limit);
  const tokens = new Array<string>(n);
  const quoted = new Array<string>(n);
  for (let i = 0; i < n; i++) {
    const w = words[i % words.length] as string;
    tokens[i] = i === n - 1 ? w : `${w} `;
    quoted[i] = JSON.stringify(tokens[i]);
  }
  return { draft: { tokens, quoted }, natural };
}

/**
 * Cuts the completion before the earliest stop sequence. The token holding the cut keeps its
 * prefix (still one word, so counts stay honest); tokens after it are dropped.
 */
function applyStop(draft: Draft, stop: readonly string[]): string | null {
  if (stop.length === 0 || draft.tokens.length === 0) return null;
  const text = draft.tokens.join("");
  let at = -1;
  let hit: string | null = null;
  for (const s of stop) {
    if (s.length === 0) continue;
    const i = text.indexOf(s);
    if (i >= 0 && (at < 0 || i < at)) {
      at = i;
      hit = s;
    }
  }
  if (hit === null) return null;
  let offset = 0;
  let keep = 0;
  for (; keep < draft.tokens.length; keep++) {
    const t = draft.tokens[keep] as string;
    if (offset + t.length > at) {
      const prefix = t.slice(0, at - offset);
      if (countWords(prefix) > 0) {
        draft.tokens[keep] = prefix;
        draft.quoted[keep] = JSON.stringify(prefix);
        keep++;
      }
      break;
    }
    offset += t.length;
  }
  draft.tokens.length = keep;
  draft.quoted.length = keep;
  return hit;
}

const NO_DETAIL: UsageDetail = Object.freeze({ cachedTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0 });

/**
 * The completion for a request: deterministic in the prompt, `max_tokens` honoured. The cache
 * counts asked for are cut to the prompt (reads first, then writes from what is left).
 */
export function generate(
  request: ChatRequest,
  mode: TextMode,
  outputTokens: number | undefined,
  detail: UsageDetail = NO_DETAIL,
  jsonMode: JsonMode = "valid",
): Completion {
  const limit = request.maxTokens ?? Number.POSITIVE_INFINITY;
  const words = mode === "echo" && !request.jsonFormat ? (request.lastUserText.match(/\S+/g) ?? []) : [];
  const { draft, natural } = request.jsonFormat
    ? json(request, jsonMode, limit)
    : words.length > 0
      ? echo(words, outputTokens, limit)
      : lorem(request, outputTokens, limit);
  const stopSequence = applyStop(draft, request.stop);
  const finish: FinishReason = stopSequence !== null ? "stop_sequence" : natural > limit ? "length" : "stop";
  const promptTokens = countPromptWords(request.promptTexts);
  const cachedTokens = Math.min(detail.cachedTokens, promptTokens);
  return {
    tokens: draft.tokens,
    quoted: draft.quoted,
    finish,
    stopSequence,
    promptTokens,
    cachedTokens,
    cacheWriteTokens: Math.min(detail.cacheWriteTokens, promptTokens - cachedTokens),
    reasoningTokens: detail.reasoningTokens,
  };
}
