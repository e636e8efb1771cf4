import { createClient } from "@keyv/redis";
import { randomUUID } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { BoundedLruStore } from "../../src/cache/bounded-lru-store.js";
import { CACHE_KEY_PREFIX } from "../../src/cache/cache-key.js";
import { createResponseCache, responseCacheOn } from "../../src/cache/keyv-cache.js";
import { fromStoredVector, toStoredVector } from "../../src/cache/stored-vectors.js";
import { createKvStore } from "../../src/cache/kv-store.js";
import type { CachedGeneration, ResponseCache } from "../../src/cache/response-cache.js";
import { describeWithRedis } from "../helpers/redis.js";
import { closedPort, startSilentRedis } from "./silent-redis.js";

function generation(text = "Hello, world"): CachedGeneration {
  return {
    model: "sim/echo-1",
    provider: "sim",
    chunks: text.split(/(?<= )/),
    finishReason: "stop",
    usage: { inputTokens: 12, outputTokens: 3 },
    createdAt: 1_700_000_000_000,
  };
}

/** A fresh key per test, so runs against a shared Redis never see each other's entries. */
const freshKey = () => `${CACHE_KEY_PREFIX}test-${randomUUID()}`;

interface ErrorLog {
  errors: Error[];
  onError: (err: Error) => void;
}
function errorLog(): ErrorLog {
  const errors: Error[] = [];
  return { errors, onError: (err) => errors.push(err) };
}

afterEach(() => {
  vi.useRealTimers();
});

describe("BoundedLruStore", () => {
  it("evicts the least recently used key beyond its bound", () => {
    const lru = new BoundedLruStore<string>(3);
    lru.set("a", "1").set("b", "2").set("c", "3");
    expect(lru.get("a")).toBe("1"); // a is now the most recent
    lru.set("d", "4");
    expect([...lru.keys()].sort()).toEqual(["a", "c", "d"]);
    expect(lru.evictions).toBe(1);
    lru.set("c", "3'"); // overwriting refreshes too
    lru.set("e", "5");
    expect([...lru.keys()].sort()).toEqual(["c", "d", "e"]);
  });

  it("rejects a bound that is not a positive integer", () => {
    expect(() => new BoundedLruStore(0)).toThrow(RangeError);
  });
});

describe("response cache in memory", () => {
  it("round-trips an entry as a copy", async () => {
    const log = errorLog();
    const cache = createResponseCache({ maxEntries: 10, onError: log.onError });
    const key = freshKey();
    const value = generation();
    await cache.set(key, value, 60_000);
    const got = await cache.get(key);
    expect(got).toEqual(value);
    expect(got).not.toBe(value);
    expect(await cache.get(freshKey())).toBeUndefined();
    expect(log.errors).toEqual([]);
    await cache.close();
  });

  it("keeps a frozen JSON copy: later changes to the written value do not reach it, and a bigint is refused", async () => {
    const log = errorLog();
    const store = createKvStore({ maxEntries: 10, onError: log.onError });
    const written = { text: "a", nested: { chunks: ["x"] }, gone: undefined };
    expect(await store.set("k", written, 60_000)).toBe(true);
    written.nested.chunks.push("y");
    const got = (await store.get("k")) as typeof written;
    expect(got).toEqual({ text: "a", nested: { chunks: ["x"] } });
    expect(Object.isFrozen(got.nested.chunks)).toBe(true);
    expect(() => got.nested.chunks.push("z")).toThrow(TypeError);
    expect(await store.get("k")).toEqual({ text: "a", nested: { chunks: ["x"] } });
    expect(await store.set("b", { n: 1n }, 60_000)).toBe(false);
    expect(log.errors.map((e) => e.message)).toEqual(["memory store set failed"]);
    await store.close();
  });

  it("keeps an Embed entry's vectors exactly, and treats vectors of the wrong shape as a miss", async () => {
    const cache = createResponseCache({ maxEntries: 10, onError: () => {} });
    const key = freshKey();
    const vectors = [new Float32Array([0.1, -0.2, 1e-8]), new Float32Array([3.4028234e38, 0, -0])];
    await cache.set(key, { ...generation(), chunks: [], vectors: vectors.map(toStoredVector) }, 60_000);
    const got = await cache.get(key);
    expect(got?.vectors?.map(fromStoredVector)).toEqual(vectors);
    const store = createKvStore({ maxEntries: 10, onError: () => {} });
    const bad = freshKey();
    await store.set(bad, { ...generation(), vectors: [1, 2] }, 60_000);
    expect(await responseCacheOn(store, () => {}).get(bad)).toBeUndefined();
    expect(fromStoredVector("AAA")).toBeUndefined();
    await cache.close();
    await store.close();
  });

  it("keeps the usage detail, and reads an entry written without it", async () => {
    const cache = createResponseCache({ maxEntries: 10, onError: () => {} });
    const key = freshKey();
    const value = { ...generation(), usage: { inputTokens: 12, outputTokens: 3, cachedInputTokens: 8, cacheWriteInputTokens: 2, reasoningTokens: 1 } };
    await cache.set(key, value, 60_000);
    expect((await cache.get(key))?.usage).toEqual(value.usage);
    const store = createKvStore({ maxEntries: 10, onError: () => {} });
    const older = freshKey();
    await store.set(older, generation(), 60_000);
    expect((await responseCacheOn(store, () => {}).get(older))?.usage).toEqual({ inputTokens: 12, outputTokens: 3 });
    await store.set(older, { ...generation(), usage: { inputTokens: 12, outputTokens: 3, cachedInputTokens: -1 } }, 60_000);
    expect(await responseCacheOn(store, () => {}).get(older)).toBeUndefined();
    await cache.close();
    await store.close();
  });

  it("misses once the TTL has passed", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const cache = createResponseCache({ maxEntries: 10, onError: () => {} });
    const key = freshKey();
    await cache.set(key, generation(), 1_000);
    vi.setSystemTime(Date.now() + 999);
    expect(await cache.get(key)).toBeDefined();
    vi.setSystemTime(Date.now() + 2);
    expect(await cache.get(key)).toBeUndefined();
  });

  it("holds at most maxEntries, evicting the least recently used", async () => {
    const cache = createResponseCache({ maxEntries: 3, onError: () => {} });
    const keys = [freshKey(), freshKey(), freshKey(), freshKey()];
    for (const key of keys.slice(0, 3)) await cache.set(key, generation(key), 60_000);
    expect(await cache.get(keys[0] as string)).toBeDefined(); // refresh the oldest
    await cache.set(keys[3] as string, generation(), 60_000);
    expect(await cache.get(keys[1] as string)).toBeUndefined();
    for (const key of [keys[0], keys[2], keys[3]]) expect(await cache.get(key as string)).toBeDefined();
  });

  it("treats an entry of the wrong shape as a miss and reports it", async () => {
    const log = errorLog();
    const store = createKvStore({ maxEntries: 10, onError: log.onError });
    const cache = responseCacheOn(store, log.onError);
    const key = freshKey();
    await store.set(key, { model: "m", chunks: "not an array" }, 60_000);
    expect(await cache.get(key)).toBeUndefined();
    expect(log.errors.map((e) => e.message).join()).toMatch(/unexpected shape/);
  });

  it("writes nothing for a TTL of 0", async () => {
    const cache = createResponseCache({ maxEntries: 10, onError: () => {} });
    const key = freshKey();
    await cache.set(key, generation(), 0);
    expect(await cache.get(key)).toBeUndefined();
  });
});

describe("response cache when Redis is unreachable", () => {
  // kv-store.ts imports the Redis store on first use: load it first, so that the timings below are
  // the connection's, not the module loader's (hundreds of ms when the machine is busy).
  beforeAll(async () => {
    await import("../../src/cache/redis-kv-store.js");
  });

  it("misses quickly and reports, never throws, when nothing listens on the port", async () => {
    const log = errorLog();
    // Loaded first, so the timing below is the store's and not the Redis client's first import (slow on a busy machine).
    await import("../../src/cache/redis-kv-store.js");
    // A connect timeout far above the bound: a store that waited for it could not pass.
    const cache = createResponseCache({ redisUrl: `redis://127.0.0.1:${await closedPort()}`, maxEntries: 10, onError: log.onError, connectTimeoutMs: 10_000 });
    const started = performance.now();
    await expect(cache.get(freshKey())).resolves.toBeUndefined();
    await expect(cache.set(freshKey(), generation(), 60_000)).resolves.toBeUndefined();
    expect(performance.now() - started).toBeLessThan(1000);
    expect(log.errors.length).toBeGreaterThanOrEqual(2);
    await cache.close();
  });

  it("bounds an operation when the server stops answering (a hung Redis), then bypasses it without waiting", async () => {
    const server = await startSilentRedis();
    const log = errorLog();
    const health: boolean[] = [];
    const cache = createResponseCache({
      redisUrl: server.url,
      maxEntries: 10,
      onError: log.onError,
      opTimeoutMs: 50,
      onHealthChange: (healthy) => health.push(healthy),
    });
    try {
      expect(await cache.ready?.(2_000)).toBe(true);
      expect(await cache.get(freshKey())).toBeUndefined(); // answered: a real miss
      expect(log.errors).toEqual([]);
      server.hang();
      let started = performance.now();
      // Two operations in flight together: the first timeout releases both.
      const [a, b] = await Promise.all([cache.get(freshKey()), cache.set(freshKey(), generation(), 60_000)]);
      expect([a, b]).toEqual([undefined, undefined]);
      const firstMs = performance.now() - started;
      expect(firstMs).toBeGreaterThanOrEqual(45);
      expect(firstMs).toBeLessThan(200);
      expect(health).toEqual([false]);
      // From now on the hung server is not waited for at all.
      started = performance.now();
      for (let i = 0; i < 20; i++) {
        await expect(cache.get(freshKey())).resolves.toBeUndefined();
        await expect(cache.set(freshKey(), generation(), 60_000)).resolves.toBeUndefined();
      }
      expect(performance.now() - started).toBeLessThan(45);
      expect(log.errors.length).toBe(1);
      expect(String((log.errors[0]?.cause as Error | undefined)?.message)).toMatch(/timeout|timed out/i);
    } finally {
      await cache.close();
      await server.close();
    }
  });
});

describeWithRedis("response cache on Redis", (redisUrl) => {
  let cache: ResponseCache;
  let other: ResponseCache;
  let raw: ReturnType<typeof createClient>;
  const log = errorLog();

  beforeAll(async () => {
    cache = createResponseCache({ redisUrl, maxEntries: 10, onError: log.onError, opTimeoutMs: 2_000 });
    other = createResponseCache({ redisUrl, maxEntries: 10, onError: log.onError, opTimeoutMs: 2_000 });
    raw = createClient({ url: redisUrl });
    await raw.connect();
    expect(await cache.ready?.(5_000)).toBe(true);
    expect(await other.ready?.(5_000)).toBe(true);
  });

  afterAll(async () => {
    await cache?.close();
    await other?.close();
    await raw?.close();
  });

  it("round-trips an entry under exactly its key, with the TTL on the Redis key", async () => {
    const key = freshKey();
    await cache.set(key, generation(), 60_000);
    expect(await cache.get(key)).toEqual(generation());
    const pttl = await raw.pTTL(key);
    expect(pttl).toBeGreaterThan(55_000);
    expect(pttl).toBeLessThanOrEqual(60_000);
    expect(log.errors).toEqual([]);
  });

  it("is shared by replicas: what one writes, another reads", async () => {
    const key = freshKey();
    await cache.set(key, generation("shared answer"), 60_000);
    expect((await other.get(key))?.chunks.join("")).toBe("shared answer");
  });

  it("lets Redis expire the key after its TTL", async () => {
    const key = freshKey();
    await cache.set(key, generation(), 1_000);
    const pttl = await raw.pTTL(key);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(1_000);
  });

  it("misses an entry past its TTL even before Redis drops it", async () => {
    const key = freshKey();
    await cache.set(key, generation(), 60_000);
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + 60_001);
    expect(await cache.get(key)).toBeUndefined();
  });

  it("treats bytes that are not JSON as a miss and reports them", async () => {
    const key = freshKey();
    await raw.set(key, "{not json", { expiration: { type: "PX", value: 60_000 } });
    const before = log.errors.length;
    expect(await cache.get(key)).toBeUndefined();
    expect(log.errors.length).toBe(before + 1);
    expect(String((log.errors.at(-1)?.cause as Error | undefined)?.message)).toMatch(/JSON/);
    log.errors.length = before;
  });
});
