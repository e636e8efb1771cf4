import type { ErrorReason } from "./taxonomy.js";
import { TAXONOMY } from "./taxonomy.js";

/** A field of the request that failed validation (becomes google.rpc.BadRequest). */
export interface FieldViolation {
  field: string;
  description: string;
}

/** A quota that refused the call (becomes google.rpc.QuotaFailure). */
export interface QuotaViolation {
  subject: string;
  description: string;
}

/** One upstream attempt, kept for logs and the ledger, never sent to a client. */
export interface AttemptRecord {
  provider: string;
  deployment: string;
  reason: ErrorReason | "OK";
  latencyMs: number;
}

export interface LlmErrorOptions {
  /** Safe, client-facing metadata for ErrorInfo (never secrets or prompt text). */
  metadata?: Record<string, string>;
  fieldViolations?: FieldViolation[];
  quotaViolations?: QuotaViolation[];
  /** When waiting would help: becomes google.rpc.RetryInfo. */
  retryAfterMs?: number;
  /** Every attempt that led here, for the log and the ledger. */
  attempts?: AttemptRecord[];
  cause?: unknown;
}

/**
 * The one error type that crosses layers below the handlers. Its message must be
 * safe to show a client; internal detail goes in `cause`, which never leaves the service.
 */
export class LlmError extends Error {
  override readonly name = "LlmError";
  readonly reason: ErrorReason;
  readonly metadata: Record<string, string>;
  readonly fieldViolations: FieldViolation[];
  readonly quotaViolations: QuotaViolation[];
  readonly retryAfterMs: number | undefined;
  readonly attempts: AttemptRecord[];

  constructor(reason: ErrorReason, message: string, options: LlmErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.reason = reason;
    this.metadata = options.metadata ?? {};
    this.fieldViolations = options.fieldViolations ?? [];
    this.quotaViolations = options.quotaViolations ?? [];
    this.retryAfterMs = options.retryAfterMs;
    this.attempts = options.attempts ?? [];
  }

  get retryable(): boolean {
    return TAXONOMY[this.reason].retryable;
  }

  /** The same error with the attempts that led to it attached. */
  withAttempts(attempts: AttemptRecord[]): LlmError {
    return new LlmError(this.reason, this.message, {
      metadata: this.metadata,
      fieldViolations: this.fieldViolations,
      quotaViolations: this.quotaViolations,
      retryAfterMs: this.retryAfterMs,
      attempts,
      cause: this.cause,
    });
  }
}

/** Shorthand for an INVALID_REQUEST with field violations. */
export function invalidRequest(violations: FieldViolation[]): LlmError {
  const first = violations[0];
  const summary = first ? `${first.field}: ${first.description}` : "invalid request";
  const more = violations.length > 1 ? ` (and ${violations.length - 1} more)` : "";
  return new LlmError("INVALID_REQUEST", `invalid request: ${summary}${more}`, { fieldViolations: violations });
}

/** Whatever was thrown, as an LlmError; unknown throws become a masked INTERNAL. */
export function asLlmError(err: unknown): LlmError {
  if (err instanceof LlmError) return err;
  return new LlmError("INTERNAL", "internal error", { cause: err });
}
