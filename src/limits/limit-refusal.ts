import { LlmError } from "../errors/llm-error.js";
import type { LimitSubject } from "./limiter.js";

/** Each limit a subject may carry, by its ErrorInfo name. */
export type LimitKind =
  | "requests_per_minute"
  | "tokens_per_minute"
  | "concurrent_requests"
  | "budget_usd_per_day"
  | "budget_usd_per_month";

/** One limit of one subject that refused a call. */
export interface LimitViolation {
  subject: LimitSubject;
  kind: LimitKind;
  /** When waiting this long would let the call through; undefined when waiting cannot help. */
  retryAfterMs: number | undefined;
}

/** How a subject is named in a QuotaFailure and in Redis keys: "key:<id>" or "tenant:<name>". */
export function subjectName(subject: LimitSubject): string {
  return `${subject.scope}:${subject.id}`;
}

/** Billionths of a USD as a decimal USD string without trailing zeros: 1_500_000_000n → "1.5". */
export function formatUsdNanos(nanos: bigint): string {
  const negative = nanos < 0n;
  const abs = negative ? -nanos : nanos;
  const whole = abs / 1_000_000_000n;
  const fraction = (abs % 1_000_000_000n).toString().padStart(9, "0").replace(/0+$/, "");
  return `${negative ? "-" : ""}${whole}${fraction === "" ? "" : `.${fraction}`}`;
}

/** The configured value of a limit, as text for a message. */
function limitValue(subject: LimitSubject, kind: LimitKind): string {
  const l = subject.limits;
  switch (kind) {
    case "requests_per_minute":
      return String(l.requestsPerMinute ?? "");
    case "tokens_per_minute":
      return String(l.tokensPerMinute ?? "");
    case "concurrent_requests":
      return String(l.concurrentRequests ?? "");
    case "budget_usd_per_day":
      return l.budgetUsdNanosPerDay === undefined ? "" : formatUsdNanos(l.budgetUsdNanosPerDay);
    case "budget_usd_per_month":
      return l.budgetUsdNanosPerMonth === undefined ? "" : formatUsdNanos(l.budgetUsdNanosPerMonth);
  }
}

/** "requests per minute (limit 50)", "USD budget per UTC day (limit 1.5 USD)". */
export function describeLimit(subject: LimitSubject, kind: LimitKind): string {
  const value = limitValue(subject, kind);
  switch (kind) {
    case "requests_per_minute":
      return `requests per minute (limit ${value})`;
    case "tokens_per_minute":
      return `tokens per minute (limit ${value})`;
    case "concurrent_requests":
      return `concurrent requests (limit ${value})`;
    case "budget_usd_per_day":
      return `USD budget per UTC day (limit ${value} USD)`;
    case "budget_usd_per_month":
      return `USD budget per UTC month (limit ${value} USD)`;
  }
}

export function isBudget(kind: LimitKind): boolean {
  return kind === "budget_usd_per_day" || kind === "budget_usd_per_month";
}

/**
 * The error for a refused admission: BUDGET_EXCEEDED when a budget refused (waiting out a rate
 * limit would not help then), RATE_LIMITED otherwise. Every violation becomes a QuotaFailure
 * entry; RetryInfo is the longest wait among them, and absent when any of them cannot be waited out.
 */
export function refusalError(violations: readonly LimitViolation[]): LlmError {
  const first = violations.find((v) => isBudget(v.kind)) ?? violations[0];
  if (first === undefined) throw new Error("refusalError needs at least one violation");
  const budget = isBudget(first.kind);
  const waits = violations.map((v) => v.retryAfterMs);
  const retryAfterMs = waits.every((w): w is number => w !== undefined)
    ? Math.max(1, Math.ceil(Math.max(...waits)))
    : undefined;
  const name = subjectName(first.subject);
  const description = describeLimit(first.subject, first.kind);
  const more = violations.length > 1 ? ` (and ${violations.length - 1} more)` : "";
  const message = `${budget ? "budget exceeded" : "rate limit exceeded"} for ${name}: ${description}${more}`;
  return new LlmError(budget ? "BUDGET_EXCEEDED" : "RATE_LIMITED", message, {
    quotaViolations: violations.map((v) => ({
      subject: subjectName(v.subject),
      description: describeLimit(v.subject, v.kind),
    })),
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    metadata: { limit: first.kind, subject: name, limit_value: limitValue(first.subject, first.kind) },
  });
}
