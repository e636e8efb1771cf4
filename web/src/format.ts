/** Display helpers: token counts, USD from integer nanos, durations. */

const grouped = new Intl.NumberFormat("en-US");

export function formatTokens(n: bigint | number): string {
  const v = typeof n === "bigint" ? n : BigInt(Math.round(n));
  if (v >= 1_000_000n) return `${(Number(v) / 1e6).toFixed(v >= 10_000_000n ? 0 : 1)}M`;
  if (v >= 10_000n) return `${(Number(v) / 1e3).toFixed(v >= 100_000n ? 0 : 1)}k`;
  return grouped.format(v);
}

/** USD from billionths of a dollar, exact (bigint arithmetic), with enough digits to show small sums. */
export function formatUsd(nanos: bigint): string {
  const negative = nanos < 0n;
  const abs = negative ? -nanos : nanos;
  const dollars = abs / 1_000_000_000n;
  const fraction = (abs % 1_000_000_000n).toString().padStart(9, "0");
  // Two decimals from a cent up; below that, up to six significant-looking decimals.
  const digits = abs >= 10_000_000n ? 2 : 6;
  let shown = fraction.slice(0, digits);
  if (digits > 2) shown = shown.replace(/0+$/, "").padEnd(2, "0");
  return `${negative ? "-" : ""}$${grouped.format(dollars)}.${shown}`;
}

export function formatMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}
