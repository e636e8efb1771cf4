/**
 * OpenAI (and OpenAI-compatible) failures → the taxonomy. One table maps status to reason,
 * so the mapping cannot drift; the client-facing message is generic ("openai returned 503"),
 * the SDK error is kept as `cause` and never leaves the service.
 */
import { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from "openai";
import { abortReason } from "../../core/abort.js";
import { LlmError } from "../../errors/llm-error.js";
import type { ErrorReason } from "../../errors/taxonomy.js";
import { isWireFailure, parseDurationMs, parseRetryAfter, reasonForStatus, statusMessage, upstreamError, type HeaderSource } from "../http.js";

const PROVIDER = "openai";

/** Upstream HTTP status → reason. Unlisted: other 4xx → PROVIDER_REJECTED, anything else → PROVIDER_UNAVAILABLE. */
export const OPENAI_STATUS_REASONS: Readonly<Record<number, ErrorReason>> = {
  400: "PROVIDER_REJECTED",
  401: "PROVIDER_AUTH_FAILED",
  402: "PROVIDER_AUTH_FAILED", // billing: our account, not the request
  403: "PROVIDER_AUTH_FAILED",
  404: "PROVIDER_REJECTED", // model_not_found: the catalogue names a model the endpoint lacks
  408: "PROVIDER_TIMEOUT",
  409: "PROVIDER_UNAVAILABLE", // OpenAI: a lock timeout, which its own SDK retries
  413: "PROVIDER_REJECTED",
  422: "PROVIDER_REJECTED",
  429: "PROVIDER_RATE_LIMITED",
  500: "PROVIDER_UNAVAILABLE",
  502: "PROVIDER_UNAVAILABLE",
  503: "PROVIDER_UNAVAILABLE",
  504: "PROVIDER_UNAVAILABLE",
  529: "PROVIDER_UNAVAILABLE",
};

/** Error `code`s that say more than a status, or stand in for one inside a stream. */
const CODE_REASONS: Readonly<Record<string, ErrorReason>> = {
  context_length_exceeded: "CONTEXT_LENGTH_EXCEEDED",
  rate_limit_exceeded: "PROVIDER_RATE_LIMITED",
  insufficient_quota: "PROVIDER_AUTH_FAILED", // billing: retrying will not help, another deployment may
  invalid_api_key: "PROVIDER_AUTH_FAILED",
};

/**
 * vLLM, llama.cpp and others answer an over-long prompt with a 400 and no code, only a message
 * ("This model's maximum context length is 4096 tokens…"): it is read here, never repeated.
 */
const CONTEXT_LENGTH_MESSAGE = /maximum context length|context length|context window|prompt is too long/i;

/**
 * When OpenAI's rate-limit headers say which budget ran out, when it resets
 * (`x-ratelimit-reset-requests` / `-tokens`, Go durations such as "6m0s"): the later of the exhausted ones.
 */
function rateLimitResetMs(headers: HeaderSource): number | undefined {
  let wait: number | undefined;
  for (const kind of ["requests", "tokens"]) {
    if (headers.get(`x-ratelimit-remaining-${kind}`)?.trim() !== "0") continue;
    const reset = headers.get(`x-ratelimit-reset-${kind}`);
    const ms = reset === null ? undefined : parseDurationMs(reset);
    if (ms !== undefined) wait = Math.max(wait ?? 0, ms);
  }
  return wait;
}

function fromApiError(err: APIError, now: number): LlmError {
  const code = typeof err.code === "string" ? err.code : undefined;
  const status = err.status;
  if (status === undefined) {
    // An `{"error": …}` event inside a stream that had started: no status, maybe a code.
    const reason = (code !== undefined ? CODE_REASONS[code] : undefined) ?? "PROVIDER_UNAVAILABLE";
    return upstreamError(PROVIDER, reason, `${PROVIDER} reported an error mid-stream`, err);
  }
  let reason = reasonForStatus(OPENAI_STATUS_REASONS, status);
  if (status === 400 && (code === "context_length_exceeded" || CONTEXT_LENGTH_MESSAGE.test(err.message))) {
    reason = "CONTEXT_LENGTH_EXCEEDED";
  } else if (status === 429 && code === "insufficient_quota") {
    reason = "PROVIDER_AUTH_FAILED";
  }
  const headers = err.headers;
  let retryAfterMs = headers === undefined ? undefined : parseRetryAfter(headers, now);
  if (retryAfterMs === undefined && status === 429 && headers !== undefined) retryAfterMs = rateLimitResetMs(headers);
  return upstreamError(PROVIDER, reason, statusMessage(PROVIDER, reason, status), err, {
    status,
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  });
}

/**
 * Whatever the SDK threw, as an LlmError. An aborted signal wins over everything: its reason
 * (the router's PROVIDER_TIMEOUT or the client's CANCELLED) is what happened.
 */
export function openAiError(err: unknown, signal: AbortSignal, now: number = Date.now()): LlmError {
  if (err instanceof LlmError) return err;
  if (signal.aborted || err instanceof APIUserAbortError) return abortReason(signal);
  // The SDK's own `timeout`, which is armed only until the response headers arrive.
  if (err instanceof APIConnectionTimeoutError) return upstreamError(PROVIDER, "PROVIDER_TIMEOUT", `${PROVIDER} did not answer in time`, err);
  if (err instanceof APIConnectionError) return upstreamError(PROVIDER, "PROVIDER_UNAVAILABLE", `${PROVIDER} could not be reached`, err);
  if (err instanceof APIError) return fromApiError(err, now);
  if (err instanceof SyntaxError) return upstreamError(PROVIDER, "PROVIDER_UNAVAILABLE", `${PROVIDER} sent a malformed stream`, err);
  if (isWireFailure(err)) return upstreamError(PROVIDER, "PROVIDER_UNAVAILABLE", `${PROVIDER} connection failed`, err);
  return new LlmError("INTERNAL", "internal error", { cause: err });
}
