import type { JsonFormat } from "./json-output.js";

/**
 * The internal contract between the server (timing, faults) and each vendor's wire format
 * (pure rendering), and the vendor-neutral request and completion they share.
 */

export type FinishReason = "stop" | "length" | "stop_sequence";

/** A chat request, reduced to what the simulator needs, whatever the vendor. */
export interface ChatRequest {
  model: string;
  stream: boolean;
  /** OpenAI `stream_options.include_usage`. */
  includeUsage: boolean;
  maxTokens: number | undefined;
  stop: readonly string[];
  /** Every text the prompt carries (system and messages), in order. */
  promptTexts: readonly string[];
  lastUserText: string;
  /** JSON mode, when the request asked for it (OpenAI response_format, Anthropic output_config.format, Ollama format). */
  jsonFormat?: JsonFormat;
}

/** The generated completion: tokens are words, each with its trailing space but the last. */
export interface Completion {
  tokens: readonly string[];
  /** The JSON string literal of each token, quotes included. */
  quoted: readonly string[];
  finish: FinishReason;
  stopSequence: string | null;
  promptTokens: number;
  /** Of promptTokens, read from the prompt cache. */
  cachedTokens: number;
  /** Of promptTokens, written to the prompt cache. */
  cacheWriteTokens: number;
  /** Hidden reasoning, counted in the completion on top of `tokens`. */
  reasoningTokens: number;
}

/** The usage detail a request asks the simulator to report (knobs x-sim-cached-tokens, …). */
export interface UsageDetail {
  cachedTokens: number;
  cacheWriteTokens: number;
  reasoningTokens: number;
}

/** Everything a dialect needs to render one response. */
export interface Exchange {
  id: string;
  requestId: string;
  /** Unix seconds. */
  created: number;
  /** performance.now() at arrival, for Ollama's durations. */
  startedAt: number;
  request: ChatRequest;
  completion: Completion;
  /** A dialect's cache of what every chunk of this stream starts with; "" until first used. */
  chunkHead: string;
}

export interface ErrorRendering {
  body: string;
  headers: Record<string, string>;
}

/**
 * One vendor's wire format. Pure rendering: timing and faults live in the server. Each lives
 * in simulator/<name>.ts and is listed in dialects.ts; the server routes by what it declares.
 */
export interface Dialect {
  readonly name: string;
  /** Where its chat requests are POSTed, e.g. "/v1/chat/completions" (for a path that varies, the form shown in the banner). */
  readonly chatPath: string;
  /** For a wire whose chat path varies (a model or method in the path): whether a POST to `path` is its chat request. */
  isChatPath?(path: string): boolean;
  /** The model it lists by default (GET routes), e.g. "sim-gpt". */
  readonly defaultModel: string;
  /** GET routes it answers, each rendering its body from the model ids. */
  readonly get: Readonly<Record<string, (models: readonly string[]) => string>>;
  /**
   * How a request that is not a chat POST (a GET, an unknown URL) is known to be this vendor's,
   * so it is answered and its errors shaped the vendor's way: its path starts with `pathPrefix`,
   * or else it carries `header`. Claimed by none: the first dialect listed.
   */
  readonly claims?: { pathPrefix?: string; header?: string };
  /** For the `npm run simulator` banner: the vendor's label and the variable pointing a client at `url`. */
  readonly banner: { label: string; env: (url: string) => string };
  /** Prefix of response ids: "chatcmpl-", "msg_". */
  readonly idPrefix: string;
  /** Returns the request or an error message for a 400; `path` is the chat path it came to. */
  parse(body: unknown, path: string): ChatRequest | string;
  /** Null when the key is acceptable. */
  checkAuth(headers: Readonly<Record<string, string | string[] | undefined>>, apiKey: string): string | null;
  /** A required header missing (e.g. anthropic-version): an error message for a 400, else null. */
  checkHeaders(headers: Readonly<Record<string, string | string[] | undefined>>): string | null;
  error(status: number, message: string, requestId: string, retryAfter: string | undefined): ErrorRendering;
  json(x: Exchange): string;
  streamContentType: string;
  streamStart(x: Exchange): string;
  streamToken(x: Exchange, i: number): string;
  streamEnd(x: Exchange): string;
  streamMalformed(x: Exchange): string;
  streamError(status: number, message: string): string;
  /** The response header that carries the request id (`x-request-id`, `request-id`). */
  readonly idHeader: string;
}
