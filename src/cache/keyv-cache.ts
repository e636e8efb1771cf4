import type { FinishReason } from "../core/types.js";
import { createKvStore, type KvStore, type KvStoreOptions } from "./kv-store.js";
import type { CachedGeneration, ResponseCache } from "./response-cache.js";
import { isStoredUsage, toStoredUsage } from "./stored-usage.js";

const FINISH_REASONS: ReadonlySet<string> = new Set<FinishReason>(["stop", "length", "content_filter", "unspecified"]);

/** Whether a value read back from the store has the shape this version writes. */
export function isCachedGeneration(value: unknown): value is CachedGeneration {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v["model"] === "string" &&
    typeof v["provider"] === "string" &&
    Array.isArray(v["chunks"]) &&
    v["chunks"].every((c) => typeof c === "string") &&
    typeof v["finishReason"] === "string" &&
    FINISH_REASONS.has(v["finishReason"]) &&
    isStoredUsage(v["usage"]) &&
    (v["vectors"] === undefined || (Array.isArray(v["vectors"]) && v["vectors"].every((c) => typeof c === "string"))) &&
    typeof v["createdAt"] === "number"
  );
}

/**
 * The response cache over a KvStore. Keys come from cacheKey() (already prefixed
 * `llm:v1:cache:`); values are plain JSON. A read that fails, times out or finds a value of the
 * wrong shape is a miss (reported through the store's onError / `onError`); a failed write is a
 * no-op. Nothing here throws.
 *
 * `close()` closes the store only when `ownsStore` is true (see createResponseCache).
 */
export function responseCacheOn(store: KvStore, onError: (err: Error) => void, ownsStore = false): ResponseCache {
  return {
    async get(key) {
      const value = await store.get(key);
      if (value === undefined) return undefined;
      if (!isCachedGeneration(value)) {
        onError(new Error(`response cache entry ${key} has an unexpected shape; treated as a miss`));
        return undefined;
      }
      return value;
    },
    async set(key, value, ttlMs) {
      if (!(ttlMs > 0)) return;
      const entry: CachedGeneration = {
        model: value.model,
        provider: value.provider,
        chunks: [...value.chunks],
        finishReason: value.finishReason,
        usage: toStoredUsage(value.usage),
        ...(value.vectors ? { vectors: [...value.vectors] } : {}),
        createdAt: value.createdAt,
      };
      await store.set(key, entry, ttlMs);
    },
    ready: (timeoutMs) => store.ready(timeoutMs),
    async close() {
      if (ownsStore) await store.close();
    },
  };
}

export type ResponseCacheOptions = KvStoreOptions;

/**
 * A response cache with its own store: in-memory (bounded LRU, `maxEntries`) by default, Redis
 * with `redisUrl` (shared by replicas; each operation bounded by `opTimeoutMs`, default 50 ms).
 * To share one store (one Redis connection) with idempotency, build it with createKvStore and
 * use responseCacheOn.
 */
export function createResponseCache(options: ResponseCacheOptions): ResponseCache {
  return responseCacheOn(createKvStore(options), options.onError, true);
}
