/**
 * Public types of the upstream simulator: run-level options, per-request knobs and the
 * observations tests read. The dialects' internal contract is in dialect.ts.
 */

/** A fault injected instead of (or in the middle of) a normal response. */
export type Fault =
  | { kind: "reset" } // RST the connection before responding
  | { kind: "stall" } // accept, send nothing, hold until the client closes
  | { kind: "cut-after"; tokens: number } // stream n tokens, then drop the connection
  | { kind: "stall-after"; tokens: number } // stream n tokens, then hold without sending more
  | { kind: "malformed"; tokens: number } // a broken JSON chunk after n tokens (stream) / half a body (unary)
  | { kind: "error-after"; tokens: number }; // n tokens, then the vendor's in-stream error (unary: the error status)

export type TextMode = "lorem" | "echo";

/** In JSON mode: the JSON asked for, or a wrong answer (`invalid`: JSON that breaks the schema; `not-json`: prose). */
import type { JsonMode } from "./json-output.js";
export type { JsonMode };

/** Knobs settable per run (options, CLI, env) and per request (`x-sim-*` headers). */
export interface SimulatorKnobs {
  /** Delay before the response headers. */
  latencyMs?: number;
  /** Delay after the headers, before the first token. */
  ttftMs?: number;
  /** Delay between tokens. */
  interTokenMs?: number;
  /** Exact completion length before `max_tokens` applies; default: seeded 16–63 words (lorem) or the echo. */
  outputTokens?: number;
  /** Inject this HTTP error status (400–599) instead of a completion; 200 means none. */
  status?: number;
  /** Sent as `retry-after` (seconds or an HTTP date) with an injected error; OpenAI also gets `retry-after-ms`. */
  retryAfter?: string;
  /**
   * Wins over `status`, except `error-after`, whose error carries `status` (default 500).
   * Without a stream, cut-after and stall-after act after half the JSON body.
   */
  fault?: Fault;
  /** `lorem`: seeded words from the prompt; `echo`: the last user message's words. */
  text?: TextMode;
  /**
   * Of the prompt, tokens reported as read from the prompt cache (at most the prompt): OpenAI's
   * `prompt_tokens_details.cached_tokens`, Anthropic's `cache_read_input_tokens`. Ollama reports none.
   */
  cachedTokens?: number;
  /** Of the rest of the prompt, tokens reported as written to the prompt cache: Anthropic's `cache_creation_input_tokens` only. */
  cacheWriteTokens?: number;
  /**
   * Hidden reasoning tokens, counted in the completion on top of its text: OpenAI's
   * `completion_tokens_details.reasoning_tokens`, Anthropic's `output_tokens_details.thinking_tokens`. Ollama reports none.
   */
  reasoningTokens?: number;
  /** When the request asks for JSON: `valid` (default), `invalid` or `not-json`, to test a gateway's check of the answer. */
  json?: JsonMode;
}

export interface SimulatorOptions extends SimulatorKnobs {
  /** Default 0 (an ephemeral port). */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** When set, a wrong or missing key gets 401 in the vendor's shape (OpenAI bearer, Anthropic x-api-key). */
  apiKey?: string;
  /**
   * Run-level scripted sequence: the n-th chat request uses `script[n]` over the run-level
   * knobs; once the script is spent, the run-level knobs alone apply. Headers still win.
   */
  script?: readonly SimulatorKnobs[];
  /** Model ids listed by /v1/models and /api/tags. */
  models?: readonly string[];
  /** Upper bound for every delay knob. Default 60 s. */
  maxDelayMs?: number;
  /** How long a stall is held before the simulator drops the connection itself. Default 5 min. */
  maxStallMs?: number;
  /** Bound on the per-key counters of `x-sim-fail-times`. Default 10,000 keys. */
  maxFailKeys?: number;
  /** Largest request body accepted. Default 16 MiB. */
  maxBodyBytes?: number;
}

export interface SimulatorStats {
  /** Requests received, by path ("/v1/chat/completions", …; unknown paths under "unmatched"). */
  requests: Record<string, number>;
  /** Responses sent, by status code (faults that send no status are not counted here). */
  statuses: Record<number, number>;
  /** Requests whose client closed the connection before the response finished. */
  clientAborts: number;
  /** Requests that got an injected error or fault. */
  injected: number;
  /** Requests being handled now. */
  inFlight: number;
}

/** What the simulator knew about a request whose client went away before the response finished. */
export interface ClientAbort {
  path: string;
  /** The `x-sim-tag` header, else `x-sim-fail-key`. */
  tag: string | undefined;
  /** before-headers: while the body was read, during latency or a stall; after-headers: waiting for or between tokens. */
  phase: "before-headers" | "after-headers";
  stalled: boolean;
  tokensSent: number;
  elapsedMs: number;
}

export interface AbortFilter {
  path?: string;
  tag?: string;
  /** Default 5,000 ms. */
  timeoutMs?: number;
}

export interface RequestInfo {
  path: string;
  method: string;
  headers: Readonly<Record<string, string | string[] | undefined>>;
  body: unknown;
}

export type SimulatorEvents = {
  "client-abort": [ClientAbort];
  request: [RequestInfo];
};
