/** Percentiles and small formatting helpers for the benchmark. */

/** The q-quantile (0..1) of sorted values, nearest rank; NaN when empty. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

export interface Latency {
  count: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

/** p50/p99/p99.9/max of latencies in milliseconds. */
export function summarize(valuesMs: number[]): Latency {
  const s = [...valuesMs].sort((a, b) => a - b);
  return { count: s.length, p50: quantile(s, 0.5), p99: quantile(s, 0.99), p999: quantile(s, 0.999), max: s.at(-1) ?? Number.NaN };
}

/** A number for the table: fixed decimals, or "–" when missing. */
export function fmt(v: number | undefined, digits = 2): string {
  return v === undefined || !Number.isFinite(v) ? "–" : v.toFixed(digits);
}

export function fmtSigned(v: number | undefined, digits = 2): string {
  return v === undefined || !Number.isFinite(v) ? "–" : `${v >= 0 ? "+" : ""}${v.toFixed(digits)}`;
}

/** KiB → "123.4 MiB". */
export function mib(kib: number | undefined): string {
  return kib === undefined ? "–" : `${(kib / 1024).toFixed(1)}`;
}

/**
 * A plain-text table with a header row; columns padded to their widest cell. The first
 * `leftColumns` columns are aligned left (default 1), the others right.
 */
export function table(header: string[], rows: string[][], leftColumns = 1): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i < leftColumns ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}
