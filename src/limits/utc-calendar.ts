/** UTC calendar buckets for budgets: the same arithmetic the Redis admit script does in Lua. */

const DAY_MS = 86_400_000;

/** Days since 1970-01-01 (UTC) of an instant in ms since the epoch. */
export function utcDayNumber(nowMs: number): number {
  return Math.floor(nowMs / DAY_MS);
}

/** Months since January 1970 (UTC): year * 12 + month index - 1970 * 12. */
export function utcMonthNumber(nowMs: number): number {
  const d = new Date(nowMs);
  return (d.getUTCFullYear() - 1970) * 12 + d.getUTCMonth();
}

/** The first instant of the next UTC day. */
export function nextUtcDayStart(nowMs: number): number {
  return (utcDayNumber(nowMs) + 1) * DAY_MS;
}

/** The first instant of the next UTC month. */
export function nextUtcMonthStart(nowMs: number): number {
  const d = new Date(nowMs);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}
