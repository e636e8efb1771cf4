import type { Limits } from "../core/types.js";

/**
 * One replica's share of a limit when replicas cannot coordinate: ceil(limit / replicas), at least
 * 1 (a zero limit stays zero). N replicas then admit at most about the global limit between them.
 */
export function divideLimits(limits: Limits, replicaCount: number): Limits {
  const n = Math.max(1, Math.floor(replicaCount));
  if (n === 1) return limits;
  const count = (v: number | undefined) => (v === undefined ? undefined : v <= 0 ? v : Math.max(1, Math.ceil(v / n)));
  const nanos = (v: bigint | undefined) => {
    if (v === undefined) return undefined;
    if (v <= 0n) return v;
    const share = (v + BigInt(n) - 1n) / BigInt(n);
    return share > 0n ? share : 1n;
  };
  const out: Limits = {};
  const rpm = count(limits.requestsPerMinute);
  const tpm = count(limits.tokensPerMinute);
  const conc = count(limits.concurrentRequests);
  const day = nanos(limits.budgetUsdNanosPerDay);
  const month = nanos(limits.budgetUsdNanosPerMonth);
  if (rpm !== undefined) out.requestsPerMinute = rpm;
  if (tpm !== undefined) out.tokensPerMinute = tpm;
  if (conc !== undefined) out.concurrentRequests = conc;
  if (day !== undefined) out.budgetUsdNanosPerDay = day;
  if (month !== undefined) out.budgetUsdNanosPerMonth = month;
  return out;
}
