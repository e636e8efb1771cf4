import type { GenerationRequest } from "../core/types.js";

/** Configured cache defaults. */
export interface CacheDefaults {
  /** TTL when the request does not name one (ttl_seconds = 0). */
  defaultTtlMs: number;
  /** Upper bound on any TTL, requested or default. */
  maxTtlMs: number;
}

/** What the cache does for one request. */
export interface CacheDecision {
  /** Look the response up before calling the upstream. */
  read: boolean;
  /** Store the response after a successful upstream call. */
  write: boolean;
  /** How long a written entry lives; 0 when nothing is written. */
  ttlMs: number;
}

/** A request whose answer is worth reusing without being asked to: temperature 0, or a seed. */
export function isDeterministic(req: Pick<GenerationRequest, "temperature" | "seed">): boolean {
  return req.temperature === 0 || req.seed !== undefined;
}

/**
 * The per-request cache policy:
 * - `default` reads and writes deterministic requests only (see isDeterministic);
 * - `force` reads and writes whatever the sampling parameters;
 * - `bypass` neither reads nor writes;
 * - `refresh` skips the lookup but writes the fresh answer, replacing a stale one.
 * The TTL is the request's ttl_seconds, or the configured default when that is 0, capped at the
 * configured maximum. A TTL that comes out at 0 or less (caching configured off) writes nothing.
 */
export function decideCache(req: Pick<GenerationRequest, "cache" | "temperature" | "seed">, defaults: CacheDefaults): CacheDecision {
  const requested = req.cache.ttlSeconds > 0 ? req.cache.ttlSeconds * 1000 : defaults.defaultTtlMs;
  const ttlMs = Math.max(0, Math.min(requested, defaults.maxTtlMs));
  let read: boolean;
  let write: boolean;
  switch (req.cache.mode) {
    case "default":
      read = write = isDeterministic(req);
      break;
    case "force":
      read = write = true;
      break;
    case "bypass":
      read = write = false;
      break;
    case "refresh":
      read = false;
      write = true;
      break;
  }
  if (ttlMs <= 0) write = false;
  return { read, write, ttlMs: write ? ttlMs : 0 };
}
