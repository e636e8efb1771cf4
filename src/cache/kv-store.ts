import { Keyv } from "keyv";
import { BoundedLruStore } from "./bounded-lru-store.js";
import { asError } from "../core/as-error.js";

export interface KvStoreOptions {
  /** Redis URL, shared by every replica; without it the store is in memory, per process. */
  redisUrl?: string;
  /** In-memory store only: the most entries kept; the least recently used go first. */
  maxEntries: number;
  /** Every failure (Redis down or slow, bad data) is reported here and never thrown. */
  onError: (err: Error) => void;
  /** Redis only: the most a single operation may take before it counts as failed. Default 50 ms. */
  opTimeoutMs?: number;
  /** Redis only: how long one connection attempt may take. Default 1000 ms. */
  connectTimeoutMs?: number;
  /**
   * Redis only: told when an operation times out and the store starts bypassing Redis (false, with
   * the timeout), and when Redis answers a probe again (true). Must not throw.
   */
  onHealthChange?: (healthy: boolean, err?: Error) => void;
  /** Redis only: how often an unhealthy store sends a PING to see whether Redis answers again. Default 250 ms. */
  probeIntervalMs?: number;
}

export type SetIfAbsentResult = "set" | "exists" | "failed";

/**
 * A small key-value store with TTLs over keyv, in memory or on Redis. It never throws and never
 * hangs: a failed or timed-out read is a miss, a failed write returns false / "failed", and the
 * cause goes to `onError`. Values are JSON (no bigints). A value read back is a JSON copy of what
 * was written; in memory it is frozen and shared by every reader, so treat it as read-only.
 */
export interface KvStore {
  readonly kind: "memory" | "redis";
  /**
   * False while the store bypasses Redis: an operation timed out, and until Redis answers a probe
   * every operation returns its miss / "failed" at once instead of waiting out its timeout again.
   * Always true in memory.
   */
  readonly healthy: boolean;
  /** The value, or undefined when absent, expired or unreadable. */
  get(key: string): Promise<unknown>;
  /** Whether the write was stored. `ttlMs` must be positive. */
  set(key: string, value: unknown, ttlMs: number): Promise<boolean>;
  /** Atomically writes the value only when the key holds none (Redis SET NX PX). */
  setIfAbsent(key: string, value: unknown, ttlMs: number): Promise<SetIfAbsentResult>;
  /** Removes the key; failures are reported, not thrown. */
  delete(key: string): Promise<void>;
  /** Resolves true once the store can serve (at once in memory), false if not within timeoutMs. */
  ready(timeoutMs: number): Promise<boolean>;
  /** Releases the connection; later calls are misses and no-ops. */
  close(): Promise<void>;
}

/** An in-memory store (bounded LRU) or, with `redisUrl`, a Redis-backed one. */
export function createKvStore(options: KvStoreOptions): KvStore {
  return options.redisUrl ? loadRedisStore(options, options.redisUrl) : createMemoryStore(options);
}

/**
 * The Redis store, from a module imported here, so that a process without Redis never loads the
 * Redis client (~3 MB of heap). Operations issued while the import is under way (the first few
 * milliseconds) wait for it; afterwards they go straight to the store.
 */
function loadRedisStore(options: KvStoreOptions, url: string): KvStore {
  let store: KvStore | undefined;
  const loading = import("./redis-kv-store.js").then(({ createRedisStore }) => (store = createRedisStore(options, url)));
  const use = <R>(what: string, fallback: R, op: (s: KvStore) => Promise<R>): Promise<R> =>
    store
      ? op(store)
      : loading.then(op, (err: unknown) => {
          options.onError(new Error(`redis ${what} failed: the Redis store did not load`, { cause: asError(err) }));
          return fallback;
        });
  return {
    kind: "redis",
    get healthy() {
      return store?.healthy ?? true;
    },
    get: (key) => use("get", undefined, (s) => s.get(key)),
    set: (key, value, ttlMs) => use("set", false, (s) => s.set(key, value, ttlMs)),
    setIfAbsent: (key, value, ttlMs) => use<SetIfAbsentResult>("setIfAbsent", "failed", (s) => s.setIfAbsent(key, value, ttlMs)),
    delete: (key) => use("delete", undefined, (s) => s.delete(key)),
    ready: (timeoutMs) => use("ready", false, (s) => s.ready(timeoutMs)),
    close: () => use("close", undefined, (s) => s.close()),
  };
}


/**
 * Keys are used as given (no keyv namespace prefix), so Redis holds exactly `llm:v1:...`.
 * `raw`: keyv keeps the values themselves instead of JSON text (in memory; see createMemoryStore).
 */
export function keyvOver(store: unknown, raw = false): Keyv<unknown> {
  const keyv = new Keyv<unknown>({
    store,
    namespace: undefined,
    useKeyPrefix: false,
    throwOnErrors: true,
    ...(raw ? { serialize: undefined, deserialize: undefined } : {}),
  });
  // Errors reach us as rejections of the call that hit them; keyv's duplicate events are dropped here.
  keyv.on("error", () => {});
  return keyv;
}

/** Positive whole milliseconds (Redis PX rejects fractions and 0). */
export function wholeMs(ttlMs: number): number {
  return Math.max(1, Math.ceil(ttlMs));
}

/** A value frozen all the way down, so every reader can be handed the same one. */
function frozen<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    for (const inner of Object.values(value)) frozen(inner);
    Object.freeze(value);
  }
  return value;
}

/**
 * A JSON copy of the value (the same values a Redis store would hand back, and bigints refused
 * alike), frozen. The memory store keeps it as it is instead of as JSON text: keyv's default
 * deserializer (JSON.parse with a reviver) cost a cache hit ~45 µs of CPU, and every hit now
 * shares one frozen object instead of parsing its own copy.
 */
function storable(value: unknown): unknown {
  return frozen(JSON.parse(JSON.stringify(value)) as unknown);
}

function createMemoryStore(options: KvStoreOptions): KvStore {
  const lru = new BoundedLruStore<unknown>(options.maxEntries);
  const keyv = keyvOver(lru, true);
  // setIfAbsent is a read then a write with awaits between: serialise those per key.
  const locks = new Map<string, Promise<unknown>>();
  let closed = false;

  const guarded = async <R>(what: string, fallback: R, op: () => Promise<R>): Promise<R> => {
    if (closed) return fallback;
    try {
      return await op();
    } catch (err) {
      options.onError(new Error(`memory store ${what} failed`, { cause: asError(err) }));
      return fallback;
    }
  };

  return {
    kind: "memory",
    healthy: true,
    get: (key) => guarded("get", undefined, () => keyv.get(key)),
    set: (key, value, ttlMs) => guarded("set", false, () => keyv.set(key, storable(value), wholeMs(ttlMs))),
    setIfAbsent(key, value, ttlMs) {
      const previous = locks.get(key) ?? Promise.resolve();
      const attempt = previous.then(() =>
        guarded<SetIfAbsentResult>("setIfAbsent", "failed", async () => {
          if ((await keyv.get(key)) !== undefined) return "exists";
          return (await keyv.set(key, storable(value), wholeMs(ttlMs))) ? "set" : "failed";
        }),
      );
      locks.set(key, attempt);
      void attempt.then(() => {
        if (locks.get(key) === attempt) locks.delete(key);
      });
      return attempt;
    },
    delete: (key) =>
      guarded("delete", undefined, async () => {
        await keyv.delete(key);
      }),
    ready: () => Promise.resolve(!closed),
    close() {
      closed = true;
      lru.clear();
      return Promise.resolve();
    },
  };
}
