export { CircuitState } from "@llm-service/sdk";

/** USD from the API's integer nanos (billionths of a dollar), without floating-point sums. */
export function formatUsdNanos(nanos: bigint): string {
  const whole = nanos / 1_000_000_000n;
  const fraction = (nanos % 1_000_000_000n).toString().padStart(9, "0").replace(/0+$/, "").padEnd(2, "0");
  return `$${whole}.${fraction}`;
}
