import type { Limiter } from "./limiter.js";
import { MemoryLimiter } from "./memory-limiter.js";
import { ResilientLimiter } from "./resilient-limiter.js";

export type { AdmitResult, LimitSubject, Limiter, Reservation, Settlement, Ticket } from "./limiter.js";
export { refusalError, formatUsdNanos, type LimitKind, type LimitViolation } from "./limit-refusal.js";
export { MemoryLimiter, type MemoryLimiterOptions } from "./memory-limiter.js";
export { ResilientLimiter, type ResilientLimiterOptions, type SharedLimiter } from "./resilient-limiter.js";
export { divideLimits } from "./divide-limits.js";
// The Redis side (redis-limiter.ts, redis-connection.ts) is imported from its own modules, and by
// createLimiter only with a Redis URL: the Redis client stays unloaded in a process without one.
export type { RedisLimiterOptions } from "./redis-limiter.js";
export type { RedisConnection, RedisConnectionOptions } from "./redis-connection.js";

export interface CreateLimiterOptions {
  /** Redis shared by the replicas; without it the limits hold in process only. */
  redisUrl?: string;
  /** How many replicas share the limits; while Redis is away each enforces 1/replicaCount of every limit. */
  replicaCount: number;
  /** Told when the in-process fallback starts (true, with its cause) and ends (false): log it, expose it as a metric. */
  onDegraded: (active: boolean, err?: unknown) => void;
  /** Wall clock for the in-process limiter (ms since the epoch). Redis uses its own clock. */
  now?: () => number;
  /** Redis connection errors, one per failed reconnect attempt (noisy: rate-limit the log line). */
  onRedisError?: (err: unknown) => void;
  /** Prefix of the Redis keys. Default "llm:limits". */
  keyPrefix?: string;
  /**
   * How long an admission waits for Redis before falling back. Default 1000 ms: a Redis that is down fails at
   * once (no offline queue), so this only bounds a silent one, and a shorter wait falls back spuriously on a
   * CPU-starved host in the middle of a burst, when the global limit matters most.
   */
  timeoutMs?: number;
  /** How often Redis is probed while degraded. Default 1 s. */
  probeIntervalMs?: number;
}

/**
 * The limiter the service runs with: in process without `redisUrl`; with it, Redis shared by every
 * replica, falling back to in-process limits (divided by the replica count) while Redis is away.
 * Never fails because Redis is down: it waits at most about two seconds for the first connection,
 * then starts degraded and switches to Redis when it answers.
 */
export async function createLimiter(options: CreateLimiterOptions): Promise<Limiter> {
  const now = options.now ?? Date.now;
  if (options.redisUrl === undefined || options.redisUrl === "") return new MemoryLimiter({ now });

  const [{ openRedisConnection }, { RedisLimiter }] = await Promise.all([import("./redis-connection.js"), import("./redis-limiter.js")]);
  const connection = openRedisConnection({
    url: options.redisUrl,
    ...(options.onRedisError ? { onError: options.onRedisError } : {}),
  });
  const connected = await connection.ready;
  const shared = new RedisLimiter({
    client: connection.client,
    ...(options.keyPrefix === undefined ? {} : { keyPrefix: options.keyPrefix }),
    ...(options.onRedisError ? { onBackgroundError: options.onRedisError } : {}),
  });
  const limiter = new ResilientLimiter({
    shared,
    local: new MemoryLimiter({ now }),
    replicaCount: options.replicaCount,
    onDegraded: options.onDegraded,
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    ...(options.probeIntervalMs === undefined ? {} : { probeIntervalMs: options.probeIntervalMs }),
    dispose: () => connection.close(),
  });
  if (!connected) limiter.markDegraded(new Error("Redis did not answer at startup"));
  return limiter;
}
