import type { LlmError } from "../errors/llm-error.js";
import type { Limits } from "../core/types.js";

/** Whose limits a call counts against: the key, and its tenant on top. */
export interface LimitSubject {
  scope: "key" | "tenant";
  /** The key id or the tenant name. */
  id: string;
  limits: Limits;
}

/** What admission reserves before the upstream call. */
export interface Reservation {
  /** Pre-flight input tokens + max output tokens. */
  tokens: number;
  /** Expected cost of those tokens, in billionths of a USD. */
  costUsdNanos: bigint;
}

/** The true amounts, known when the call ends (zero when it never reached the upstream). */
export interface Settlement {
  tokens: number;
  costUsdNanos: bigint;
}

/** A granted admission: settle it exactly once when the call ends, whatever the outcome. */
export interface Ticket {
  /** Releases the concurrency slot and replaces the reservation by the true amounts. Never throws. */
  settle(actual: Settlement): Promise<void>;
}

export type AdmitResult =
  | { ok: true; ticket: Ticket }
  /** RATE_LIMITED or BUDGET_EXCEEDED, with a QuotaFailure naming the limit and retryAfterMs when waiting would help. */
  | { ok: false; error: LlmError };

/**
 * Admission control over all subjects at once, all-or-nothing: requests per
 * minute and concurrency exact; tokens per minute and USD budgets reserved from
 * the estimate and settled to the truth. With Redis, one atomic operation across
 * replicas; without it, the same rules in process.
 */
export interface Limiter {
  admit(subjects: readonly LimitSubject[], reservation: Reservation): Promise<AdmitResult>;
  close(): Promise<void>;
}
