import KeyvRedis, { createClient } from "@keyv/redis";
import { Keyv } from "keyv";
import { BoundedLruStore } from "./bounded-lru-store.js";

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
}

export type SetIfAbsentResult = "set" | "exists" | "failed";

/**
 * A small key-value store with TTLs over keyv, in memory or on Redis. It never throws and never
 * hangs: a failed or timed-out read is a miss, a failed write returns false / "failed", and the
 * cause goes to `onError`. Values are JSON (no bigints).
 */
export interface KvStore {
  readonly kind: "memory" | "redis";
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

const DEFAULT_OP_TIMEOUT_MS = 50;
const DEFAULT_CONNECT_TIMEOUT_MS = 1000;
/** close() lets writes already sent land; they are bounded by the op timeout, so this is ample. */
const CLOSE_TIMEOUT_MS = 250;

/** An in-memory store (bounded LRU) or, with `redisUrl`, a Redis-backed one. */
export function createKvStore(options: KvStoreOptions): KvStore {
  return options.redisUrl ? createRedisStore(options, options.redisUrl) : createMemoryStore(options);
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/** Keys are used as given (no keyv namespace prefix), so Redis holds exactly `llm:v1:...`. */
function keyvOver(store: unknown): Keyv<unknown> {
  const keyv = new Keyv<unknown>({ store, namespace: undefined, useKeyPrefix: false, throwOnErrors: true });
  // Errors reach us as rejections of the call that hit them; keyv's duplicate events are dropped here.
  keyv.on("error", () => {});
  return keyv;
}

/** Positive whole milliseconds (Redis PX rejects fractions and 0). */
function wholeMs(ttlMs: number): number {
  return Math.max(1, Math.ceil(ttlMs));
}

function createMemoryStore(options: KvStoreOptions): KvStore {
  const lru = new BoundedLruStore<unknown>(options.maxEntries);
  const keyv = keyvOver(lru);
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
    get: (key) => guarded("get", undefined, () => keyv.get(key)),
    set: (key, value, ttlMs) => guarded("set", false, () => keyv.set(key, value, wholeMs(ttlMs))),
    setIfAbsent(key, value, ttlMs) {
      const previous = locks.get(key) ?? Promise.resolve();
      const attempt = previous.then(() =>
        guarded<SetIfAbsentResult>("setIfAbsent", "failed", async () => {
          if ((await keyv.get(key)) !== undefined) return "exists";
          return (await keyv.set(key, value, wholeMs(ttlMs))) ? "set" : "failed";
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

function createRedisStore(options: KvStoreOptions, url: string): KvStore {
  const opTimeoutMs = options.opTimeoutMs ?? DEFAULT_OP_TIMEOUT_MS;
  const client = createClient({
    url,
    // Fail at once while disconnected instead of queueing: an outage costs a miss, not latency.
    disableOfflineQueue: true,
    // node-redis drops a command (queued or written) after this, so a hung server cannot stall us.
    commandOptions: { timeout: opTimeoutMs },
    socket: {
      connectTimeout: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      // Keep reconnecting forever, backing off to 2 s: a Redis restart heals by itself.
      reconnectStrategy: (retries: number) => Math.min(50 * 2 ** Math.min(retries, 6), 2000) + Math.floor(Math.random() * 50),
    },
  });
  let connectionFailing = false;
  client.on("error", (err: unknown) => {
    // Report the first failure of each outage, not every reconnect attempt.
    if (!connectionFailing) options.onError(new Error("redis connection failed", { cause: asError(err) }));
    connectionFailing = true;
  });
  client.on("ready", () => {
    connectionFailing = false;
  });
  // Connect in the background; until it is ready every operation is a quick miss.
  client.connect().catch((err: unknown) => options.onError(new Error("redis connect gave up", { cause: asError(err) })));
  const keyv = keyvOver(new KeyvRedis(client, { throwOnErrors: true, throwOnConnectError: true }));
  let closed = false;

  /** The operation's result, or the fallback after onError when it fails or outlives the timeout. */
  const bounded = async <R>(what: string, fallback: R, op: () => Promise<R>): Promise<R> => {
    if (closed) return fallback;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      // A second, wider bound around everything keyv does, in case something outside a command waits.
      timer = setTimeout(() => reject(new Error(`timed out after ${opTimeoutMs} ms`)), opTimeoutMs + 10);
    });
    try {
      return await Promise.race([op(), timeout]);
    } catch (err) {
      options.onError(new Error(`redis ${what} failed`, { cause: asError(err) }));
      return fallback;
    } finally {
      clearTimeout(timer);
    }
  };

  return {
    kind: "redis",
    get: (key) => bounded("get", undefined, () => keyv.get(key)),
    set: (key, value, ttlMs) => bounded("set", false, () => keyv.set(key, value, wholeMs(ttlMs))),
    setIfAbsent: (key, value, ttlMs) =>
      bounded<SetIfAbsentResult>("setIfAbsent", "failed", async () => {
        const ttl = wholeMs(ttlMs);
        // The same envelope keyv writes ({ value, expires }), so keyv.get reads it back.
        const payload = await keyv.serializeData({ value, expires: Date.now() + ttl });
        if (typeof payload !== "string") throw new Error("keyv serialised to a non-string");
        const reply = await client.set(key, payload, { condition: "NX", expiration: { type: "PX", value: ttl } });
        return reply === null ? "exists" : "set";
      }),
    delete: (key) =>
      bounded("delete", undefined, async () => {
        await keyv.delete(key);
      }),
    ready(timeoutMs) {
      if (closed) return Promise.resolve(false);
      if (client.isReady) return Promise.resolve(true);
      return new Promise<boolean>((resolve) => {
        const onReady = () => {
          clearTimeout(timer);
          resolve(true);
        };
        const timer = setTimeout(() => {
          client.off("ready", onReady);
          resolve(false);
        }, timeoutMs);
        client.once("ready", onReady);
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      if (client.isReady) {
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<"late">((resolve) => {
          timer = setTimeout(() => resolve("late"), CLOSE_TIMEOUT_MS);
        });
        // close() lets commands already sent finish; destroy() if that takes too long.
        const outcome = await Promise.race([client.close().then(() => "closed" as const, () => "late" as const), late]);
        clearTimeout(timer);
        if (outcome === "late" && client.isOpen) client.destroy();
      } else if (client.isOpen) {
        client.destroy();
      }
    },
  };
}
