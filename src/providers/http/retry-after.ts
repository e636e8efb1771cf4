/**
 * How long an upstream asks us to wait: Retry-After (seconds or an HTTP date), OpenAI's and
 * Azure's retry-after-ms, and the Go durations of OpenAI's x-ratelimit-reset-* headers.
 */

/** Reads a header from a fetch Headers or anything with the same `get`. */
export interface HeaderSource {
  get(name: string): string | null;
}

/** Longest wait a header may ask for (a day): anything longer is treated as this. */
const MAX_RETRY_AFTER_MS = 86_400_000;

function clampMs(ms: number): number {
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(0, Math.ceil(ms)));
}

/** A Retry-After value: delta-seconds (decimals tolerated) or an HTTP date; undefined when unusable. */
export function parseRetryAfterValue(value: string, now: number): number | undefined {
  const v = value.trim();
  if (v.length === 0) return undefined;
  if (/^\d+(\.\d+)?$/.test(v)) return clampMs(Number(v) * 1000);
  // An HTTP date (IMF-fixdate, or the obsolete forms Date.parse also reads). Digits-only
  // strings were handled above, so a bare number never reaches Date.parse.
  if (!/[a-z]/i.test(v)) return undefined;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : clampMs(at - now);
}

/**
 * How long the upstream asks us to wait, in ms: `retry-after-ms` (OpenAI and Azure send it,
 * more precise) over `retry-after` (seconds or an HTTP date, RFC 9110 §10.2.3).
 * Undefined when neither is present and valid. Negative waits (a date in the past) are 0.
 */
export function parseRetryAfter(headers: HeaderSource | undefined, now: number = Date.now()): number | undefined {
  if (headers === undefined) return undefined;
  const ms = headers.get("retry-after-ms");
  if (ms !== null && /^\s*\d+(\.\d+)?\s*$/.test(ms)) return clampMs(Number(ms));
  const value = headers.get("retry-after");
  return value === null ? undefined : parseRetryAfterValue(value, now);
}

/**
 * A Go-style duration as OpenAI sends it in `x-ratelimit-reset-*`: "1s", "6m0s", "20ms",
 * "1h2m3.5s". Undefined when it is not one.
 */
export function parseDurationMs(value: string): number | undefined {
  const v = value.trim();
  if (!/^(\d+(\.\d+)?(h|m|s|ms))+$/.test(v)) return undefined;
  const UNIT: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 };
  let total = 0;
  for (const [, n, , unit] of v.matchAll(/(\d+(\.\d+)?)(ms|h|m|s)/g)) total += Number(n) * (UNIT[unit as string] ?? 0);
  return clampMs(total);
}
