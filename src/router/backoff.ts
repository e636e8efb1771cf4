/** Full-jitter exponential backoff: a uniform delay in [0, min(cap, base * 2^(retry-1))]. */
export function fullJitterDelay(retry: number, baseMs: number, capMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, retry - 1));
  return Math.floor(random() * ceiling);
}
