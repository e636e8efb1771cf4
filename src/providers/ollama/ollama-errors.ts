/**
 * Ollama failures → the taxonomy. The `ollama` package throws a `ResponseError` (not exported:
 * recognised by name and `status_code`) for an HTTP error, a plain Error for an `{"error": …}`
 * line mid-stream or a stream without its final `done` line, and lets fetch errors through.
 */
import { abortReason } from "../../core/abort.js";
import { LlmError } from "../../errors/llm-error.js";
import type { ErrorReason } from "../../errors/taxonomy.js";
import { isWireFailure, parseRetryAfter, reasonForStatus, statusMessage, upstreamError, type HeaderSource } from "../http.js";

const PROVIDER = "ollama";

/** Upstream HTTP status → reason. Unlisted: other 4xx → PROVIDER_REJECTED, anything else → PROVIDER_UNAVAILABLE. */
export const OLLAMA_STATUS_REASONS: Readonly<Record<number, ErrorReason>> = {
  400: "PROVIDER_REJECTED",
  401: "PROVIDER_AUTH_FAILED", // ollama.com, or a proxy in front of a local server
  403: "PROVIDER_AUTH_FAILED",
  404: "PROVIDER_REJECTED", // the model is not pulled
  408: "PROVIDER_TIMEOUT",
  429: "PROVIDER_RATE_LIMITED",
  500: "PROVIDER_UNAVAILABLE",
  502: "PROVIDER_UNAVAILABLE",
  503: "PROVIDER_UNAVAILABLE", // the request queue is full (OLLAMA_MAX_QUEUE)
  504: "PROVIDER_UNAVAILABLE",
};

/** The error line the NDJSON guard puts in place of a line that does not parse. */
export const MALFORMED_LINE_ERROR = "llm-service: malformed NDJSON line from upstream";

interface ResponseErrorLike {
  name: "ResponseError";
  status_code: number;
}

function isResponseError(err: unknown): err is Error & ResponseErrorLike {
  return err instanceof Error && err.name === "ResponseError" && typeof (err as { status_code?: unknown }).status_code === "number";
}

export interface OllamaErrorContext {
  signal: AbortSignal;
  /** Headers of the upstream response, for Retry-After (ResponseError carries none). */
  headers: HeaderSource | undefined;
  /** True once the response started streaming: any plain Error then comes from the stream. */
  streaming: boolean;
  now: number;
}

/** Whatever the package threw, as an LlmError; an aborted signal's reason wins over everything. */
export function ollamaError(err: unknown, ctx: OllamaErrorContext): LlmError {
  if (err instanceof LlmError) return err;
  if (ctx.signal.aborted) return abortReason(ctx.signal);
  if (isResponseError(err)) {
    const status = err.status_code;
    const reason = reasonForStatus(OLLAMA_STATUS_REASONS, status);
    const retryAfterMs = parseRetryAfter(ctx.headers, ctx.now);
    return upstreamError(PROVIDER, reason, statusMessage(PROVIDER, reason, status), err, {
      status,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    });
  }
  if (err instanceof Error && err.message === MALFORMED_LINE_ERROR) {
    return upstreamError(PROVIDER, "PROVIDER_UNAVAILABLE", `${PROVIDER} sent a malformed stream`, err);
  }
  if (err instanceof TypeError && err.message === "fetch failed") {
    return upstreamError(PROVIDER, "PROVIDER_UNAVAILABLE", `${PROVIDER} could not be reached`, err);
  }
  if (isWireFailure(err)) return upstreamError(PROVIDER, "PROVIDER_UNAVAILABLE", `${PROVIDER} connection failed`, err);
  // An `{"error": …}` line, or "Did not receive done or success response in stream.".
  if (ctx.streaming && err instanceof Error) return upstreamError(PROVIDER, "PROVIDER_UNAVAILABLE", `${PROVIDER} reported an error mid-stream`, err);
  return new LlmError("INTERNAL", "internal error", { cause: err });
}
