import { LlmError } from "../errors/llm-error.js";

/** How long a caller is told to wait (RetryInfo) before retrying a call the database could not serve. */
export const DATABASE_RETRY_AFTER_MS = 1000;

/**
 * A query that could not run (the database is down, unreachable or closed) as the error a caller
 * gets: UNAVAILABLE with RetryInfo, reason DATABASE_UNAVAILABLE, the driver's error kept as the
 * cause for the log. Only for queries whose inputs are validated, so a failure means the database.
 */
export function databaseUnavailable(what: string, cause: unknown): LlmError {
  return new LlmError("DATABASE_UNAVAILABLE", `${what}: the database is unavailable; retry shortly`, {
    retryAfterMs: DATABASE_RETRY_AFTER_MS,
    cause,
  });
}
