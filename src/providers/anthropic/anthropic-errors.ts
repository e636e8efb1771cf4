/**
 * Anthropic failures → the taxonomy. One table maps status to reason; an error event inside
 * a stream carries only its type, which maps to the status Anthropic uses for it. The
 * client-facing message is generic ("anthropic returned 529"); the SDK error stays as `cause`.
 */
import { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from "@anthropic-ai/sdk";
import { abortReason } from "../../core/abort.js";
import { LlmError } from "../../errors/llm-error.js";
import type { ErrorReason } from "../../errors/taxonomy.js";
import { isWireFailure, parseRetryAfter, reasonForStatus, statusMessage, upstreamError } from "../http.js";

const PROVIDER = "anthropic";

/** Upstream HTTP status → reason. Unlisted: other 4xx → PROVIDER_REJECTED, anything else → PROVIDER_UNAVAILABLE. */
export const ANTHROPIC_STATUS_REASONS: Readonly<Record<number, ErrorReason>> = {
  400: "PROVIDER_REJECTED", // invalid_request_error
  401: "PROVIDER_AUTH_FAILED", // authentication_error
  402: "PROVIDER_AUTH_FAILED", // billing_error: our account, not the request
  403: "PROVIDER_AUTH_FAILED", // permission_error
  404: "PROVIDER_REJECTED", // not_found_error: the catalogue names a model the API lacks
  408: "PROVIDER_TIMEOUT",
  413: "PROVIDER_REJECTED", // request_too_large
  429: "PROVIDER_RATE_LIMITED", // rate_limit_error
  500: "PROVIDER_UNAVAILABLE", // api_error
  502: "PROVIDER_UNAVAILABLE",
  503: "PROVIDER_UNAVAILABLE",
  504: "PROVIDER_UNAVAILABLE", // timeout_error
  529: "PROVIDER_UNAVAILABLE", // overloaded_error
};

/** The status Anthropic sends with each error type: an in-stream `error` event has only the type. */
const TYPE_STATUS: Readonly<Record<string, number>> = {
  invalid_request_error: 400,
  authentication_error: 401,
  billing_error: 402,
  permission_error: 403,
  not_found_error: 404,
  request_too_large: 413,
  rate_limit_error: 429,
  api_error: 500,
  timeout_error: 504,
  overloaded_error: 529,
};

/** "prompt is too long: 201234 tokens > 200000 maximum": read here, never repeated. */
const CONTEXT_LENGTH_MESSAGE = /prompt is too long|context window|context length/i;

function fromApiError(err: APIError, now: number): LlmError {
  if (err.status === undefined) {
    const status = err.type !== null ? TYPE_STATUS[err.type] : undefined;
    const reason = status === undefined ? "PROVIDER_UNAVAILABLE" : reasonForStatus(ANTHROPIC_STATUS_REASONS, status);
    return upstreamError(PROVIDER, reason, `${PROVIDER} reported an error mid-stream`, err);
  }
  const status = err.status;
  let reason = reasonForStatus(ANTHROPIC_STATUS_REASONS, status);
  if (status === 400 && CONTEXT_LENGTH_MESSAGE.test(err.apiMessage ?? err.message)) reason = "CONTEXT_LENGTH_EXCEEDED";
  const retryAfterMs = err.headers === undefined ? undefined : parseRetryAfter(err.headers, now);
  return upstreamError(PROVIDER, reason, statusMessage(PROVIDER, reason, status), err, {
    status,
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  });
}

/** Whatever the SDK threw, as an LlmError; an aborted signal's reason wins over everything. */
export function anthropicError(err: unknown, signal: AbortSignal, now: number = Date.now()): LlmError {
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
