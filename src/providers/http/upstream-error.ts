/** Upstream failures: wire failures told apart from our bugs, and HTTP errors as LlmErrors. */
import { LlmError } from "../../errors/llm-error.js";
import { TAXONOMY, type ErrorReason } from "../../errors/taxonomy.js";

/**
 * Whether an error is the connection or its bytes failing (reset, refused, cut mid-body,
 * TLS, a body that does not parse) rather than a bug of ours: fetch rejects with TypeError,
 * node:net and undici errors carry a string `code`, a broken JSON chunk is a SyntaxError.
 */
export function isWireFailure(err: unknown): boolean {
  if (err instanceof TypeError || err instanceof SyntaxError) return true;
  return err instanceof Error && typeof (err as { code?: unknown }).code === "string";
}

/** A vendor's table lookup: unlisted 4xx → PROVIDER_REJECTED, anything else → PROVIDER_UNAVAILABLE. */
export function reasonForStatus(table: Readonly<Record<number, ErrorReason>>, status: number): ErrorReason {
  return table[status] ?? (status >= 400 && status < 500 ? "PROVIDER_REJECTED" : "PROVIDER_UNAVAILABLE");
}

export interface UpstreamFailure {
  /** The upstream HTTP status, when there was one (goes to ErrorInfo metadata). */
  status?: number;
  /** From Retry-After; kept only for reasons the router may retry. */
  retryAfterMs?: number;
}

/**
 * The LlmError for an upstream failure: a generic message the adapter chose ("openai returned
 * 503": never the upstream body, which may echo the prompt or a key), safe metadata
 * (provider, upstream_status), Retry-After when waiting would help, and the vendor's error
 * as `cause` for the service's own redacted logs.
 */
export function upstreamError(provider: string, reason: ErrorReason, message: string, cause: unknown, extra: UpstreamFailure = {}): LlmError {
  const metadata: Record<string, string> = { provider };
  if (extra.status !== undefined) metadata.upstream_status = String(extra.status);
  return new LlmError(reason, message, {
    metadata,
    cause,
    ...(extra.retryAfterMs !== undefined && TAXONOMY[reason].retryable ? { retryAfterMs: extra.retryAfterMs } : {}),
    ...(reason === "CONTEXT_LENGTH_EXCEEDED"
      ? { fieldViolations: [{ field: "messages", description: "the prompt and max_output_tokens exceed the model's context window" }] }
      : {}),
  });
}

/** The client-facing message for an upstream HTTP error. */
export function statusMessage(provider: string, reason: ErrorReason, status: number): string {
  if (reason === "CONTEXT_LENGTH_EXCEEDED") return `${provider}: the prompt is too long for the model's context window`;
  if (reason === "PROVIDER_AUTH_FAILED") return `${provider} refused the service's credentials (${status})`;
  return `${provider} returned ${status}`;
}
