/** Dollars on the command line and in the output, as exact bigint nanos (no floating point). */

const NANOS_PER_USD = 1_000_000_000n;

/** Exact decimal dollars ("12.50", "0.000000001") to nanos; no floating point on the way. */
export function parseUsd(raw: string): bigint | null {
  const match = /^(\d+)(?:\.(\d{1,9}))?$/.exec(raw.trim());
  if (match === null) return null;
  return BigInt(match[1]!) * NANOS_PER_USD + BigInt((match[2] ?? "").padEnd(9, "0"));
}

/** Nanos as dollars with at least two decimals and no trailing zeros past them: "$12.50", "$0.000000001". */
export function formatUsd(nanos: bigint): string {
  const sign = nanos < 0n ? "-" : "";
  const abs = nanos < 0n ? -nanos : nanos;
  const fraction = (abs % NANOS_PER_USD).toString().padStart(9, "0").replace(/0+$/, "").padEnd(2, "0");
  return `${sign}$${abs / NANOS_PER_USD}.${fraction}`;
}
