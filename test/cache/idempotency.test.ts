import { createClient } from "@keyv/redis";
import { createHash, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Idempotency, idempotencyStorageKey, type IdempotencyScope, type IdempotencyWait } from "../../src/cache/idempotency.js";
import { createKvStore, type KvStore } from "../../src/cache/kv-store.js";
import type { GenerationResult } from "../../src/core/types.js";
import { LlmError } from "../../src/errors/llm-error.js";
import { describeWithRedis } from "../helpers/redis.js";
import { closedPort } from "./silent-redis.js";

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
}
function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

function result(id: string, text = "The answer is 4."): GenerationResult {
  return {
    id,
    model: "sim/echo-1",
    provider: "sim",
    text,
    finishReason: "stop",
    usage: { inputTokens: 9, outputTokens: 5 },
    costUsdNanos: 123_456_789_012n,
    cached: false,
    attempts: 1,
  };
}

/** Short, so a shared test Redis does not keep records for a day. */
const WINDOW_MS = 60_000;

function within(ms = 10_000, signal = new AbortController().signal): IdempotencyWait {
  return { signal, deadline: Date.now() + ms };
}

/** An upstream stand-in that counts calls; each call waits for its gate when one is set. */
function upstream() {
  let calls = 0;
  let gate: Deferred<void> | undefined;
  const started: Deferred<number>[] = [deferred()];
  return {
    get calls() {
      return calls;
    },
    /** Calls from now on wait until release(). */
    hold() {
      gate = deferred();
    },
    release() {
      gate?.resolve();
      gate = undefined;
    },
    fail(err: unknown) {
      gate?.reject(err);
      gate = undefined;
    },
    /** Resolves when call number n (1-based) has started. */
    started(n: number): Promise<number> {
      while (started.length < n) started.push(deferred());
      return (started[n - 1] as Deferred<number>).promise;
    },
    fn(id: string, text?: string): () => Promise<GenerationResult> {
      return async () => {
        calls++;
        while (started.length < calls) started.push(deferred());
        (started[calls - 1] as Deferred<number>).resolve(calls);
        if (gate) await gate.promise;
        return result(id, text);
      };
    },
  };
}

/** A store that tells when a read found another call's in-flight marker. */
function watched(store: KvStore): { store: KvStore; sawPending(): Promise<void> } {
  let seen = deferred<void>();
  return {
    store: {
      ...store,
      kind: store.kind,
      async get(key) {
        const value = await store.get(key);
        if ((value as { state?: unknown } | undefined)?.state === "pending") seen.resolve();
        return value;
      },
    },
    sawPending() {
      const current = seen.promise;
      return current.then(() => {
        seen = deferred();
      });
    },
  };
}

interface Backend {
  /** A store as one replica would open it. */
  open(onError: (err: Error) => void): KvStore;
  /** Whether two open() calls share data (Redis); memory replicas share one store instead. */
  separateConnections: boolean;
}

function idempotencySuite(name: string, backend: () => Backend) {
  describe(name, () => {
    const stores: KvStore[] = [];
    const errors: Error[] = [];
    const onError = (err: Error) => errors.push(err);
    let primary: KvStore;

    beforeAll(async () => {
      primary = backend().open(onError);
      stores.push(primary);
      expect(await primary.ready(5_000)).toBe(true);
    });
    afterAll(async () => {
      await Promise.all(stores.map((s) => s.close()));
    });

    /** A second replica's view of the same store. */
    async function replicaStore(): Promise<KvStore> {
      const b = backend();
      if (!b.separateConnections) return primary;
      const store = b.open(onError);
      stores.push(store);
      expect(await store.ready(5_000)).toBe(true);
      return store;
    }

    const scope = (overrides: Partial<IdempotencyScope> = {}): IdempotencyScope => ({
      tenant: `tenant-${randomUUID()}`,
      idempotencyKey: `key-${randomUUID()}`,
      requestKey: "llm:v1:cache:request-a",
      ...overrides,
    });
    const idempotency = (store = primary) => new Idempotency({ store, windowMs: WINDOW_MS, onError });

    it("answers a repeat of the same key with the first result, without calling the upstream", async () => {
      const idem = idempotency();
      const up = upstream();
      const s = scope();
      const first = await idem.run(s, within(), up.fn("req-1"));
      const second = await idem.run(s, within(), up.fn("req-2"));
      expect(up.calls).toBe(1);
      expect(first).toEqual({ result: result("req-1"), replayed: false });
      expect(second).toEqual({ result: result("req-1"), replayed: true });
      expect(typeof second.result.costUsdNanos).toBe("bigint");
      expect(idem.stats.replays).toBe(1);
    });

    it("rejects a key reused for a different request with INVALID_REQUEST naming idempotency_key", async () => {
      const idem = idempotency();
      const up = upstream();
      const s = scope();
      await idem.run(s, within(), up.fn("req-1"));
      const reuse = idem.run({ ...s, requestKey: "llm:v1:cache:request-b" }, within(), up.fn("req-2"));
      await expect(reuse).rejects.toBeInstanceOf(LlmError);
      await expect(reuse).rejects.toMatchObject({
        reason: "INVALID_REQUEST",
        fieldViolations: [expect.objectContaining({ field: "idempotency_key" })],
      });
      expect(up.calls).toBe(1);
    });

    it("rejects a different request with the key of a call still in flight", async () => {
      const idem = idempotency();
      const up = upstream();
      up.hold();
      const s = scope();
      const first = idem.run(s, within(), up.fn("req-1"));
      await up.started(1);
      await expect(idem.run({ ...s, requestKey: "llm:v1:cache:request-b" }, within(), up.fn("req-2"))).rejects.toMatchObject({
        reason: "INVALID_REQUEST",
      });
      up.release();
      await expect(first).resolves.toMatchObject({ replayed: false });
      expect(up.calls).toBe(1);
    });

    it("keeps tenants apart: the same key from two tenants runs twice", async () => {
      const idem = idempotency();
      const up = upstream();
      const key = `shared-${randomUUID()}`;
      const a = await idem.run(scope({ tenant: "tenant-a", idempotencyKey: key }), within(), up.fn("from-a"));
      const b = await idem.run(scope({ tenant: "tenant-b", idempotencyKey: key }), within(), up.fn("from-b"));
      expect(up.calls).toBe(2);
      expect([a.result.id, b.result.id, a.replayed, b.replayed]).toEqual(["from-a", "from-b", false, false]);
    });

    it("makes a duplicate that arrives while the first runs wait for it", async () => {
      const idem = idempotency();
      const up = upstream();
      up.hold();
      const s = scope();
      const first = idem.run(s, within(), up.fn("req-1"));
      const duplicate = idem.run(s, within(), up.fn("req-2"));
      expect(idem.stats.waits).toBe(1); // the duplicate found the first at once
      await up.started(1);
      up.release();
      expect(await duplicate).toEqual({ result: result("req-1"), replayed: true });
      expect(await first).toEqual({ result: result("req-1"), replayed: false });
      expect(up.calls).toBe(1);
    });

    it("makes a duplicate on another replica wait for the first", async () => {
      const up = upstream();
      up.hold();
      const s = scope();
      const replicaA = idempotency();
      const watchedB = watched(await replicaStore());
      const replicaB = new Idempotency({ store: watchedB.store, windowMs: WINDOW_MS, onError, pollMinMs: 5, pollMaxMs: 20 });
      const first = replicaA.run(s, within(), up.fn("req-1"));
      await up.started(1);
      const duplicate = replicaB.run(s, within(), up.fn("req-2"));
      await watchedB.sawPending(); // B has seen A's marker and is polling
      expect(up.calls).toBe(1);
      up.release();
      expect(await duplicate).toEqual({ result: result("req-1"), replayed: true });
      expect(await first).toMatchObject({ replayed: false });
      expect(up.calls).toBe(1);
      expect(replicaB.stats).toMatchObject({ waits: 1, replays: 1 });
    });

    it("lets exactly one of several replicas racing for a new key run it", async () => {
      const up = upstream();
      up.hold();
      const s = scope();
      const replicas = [idempotency()];
      for (let i = 0; i < 3; i++) {
        replicas.push(new Idempotency({ store: await replicaStore(), windowMs: WINDOW_MS, onError, pollMinMs: 5, pollMaxMs: 20 }));
      }
      // All start together: every one reads "no record" before any marker lands.
      const calls = replicas.map((r, i) => r.run(s, within(), up.fn(`req-${i}`)));
      await up.started(1);
      up.release();
      const outcomes = await Promise.all(calls);
      expect(up.calls).toBe(1);
      expect(new Set(outcomes.map((o) => o.result.id)).size).toBe(1);
      expect(outcomes.filter((o) => !o.replayed)).toHaveLength(1);
    });

    it("releases the key when the first call fails, so the retry runs", async () => {
      const idem = idempotency();
      const up = upstream();
      const s = scope();
      up.hold();
      const first = idem.run(s, within(), up.fn("req-1"));
      await up.started(1);
      up.fail(new LlmError("PROVIDER_UNAVAILABLE", "upstream returned 503"));
      await expect(first).rejects.toMatchObject({ reason: "PROVIDER_UNAVAILABLE" });
      await expect(idem.run(s, within(), up.fn("req-2"))).resolves.toEqual({ result: result("req-2"), replayed: false });
      expect(up.calls).toBe(2);
    });

    it("lets a waiting duplicate run the call itself when the first is cancelled", async () => {
      const idem = idempotency();
      const up = upstream();
      const s = scope();
      up.hold();
      const client = new AbortController();
      const first = idem.run(s, within(10_000, client.signal), async () => {
        const r = up.fn("req-1")();
        client.abort();
        await r;
        throw new LlmError("CANCELLED", "the call was cancelled");
      });
      const duplicate = idem.run(s, within(), up.fn("req-2"));
      await up.started(1);
      up.release(); // the first ends CANCELLED; the duplicate takes the key and runs
      await expect(first).rejects.toMatchObject({ reason: "CANCELLED" });
      await up.started(2);
      expect(await duplicate).toEqual({ result: result("req-2"), replayed: false });
      expect(up.calls).toBe(2);
    });

    it("stops a waiting duplicate at its own deadline", async () => {
      const idem = idempotency();
      const up = upstream();
      const s = scope();
      up.hold();
      const first = idem.run(s, within(), up.fn("req-1"));
      await up.started(1);
      const duplicate = idem.run(s, within(30), up.fn("req-2"));
      await expect(duplicate).rejects.toMatchObject({ reason: "PROVIDER_TIMEOUT" });
      up.release();
      await expect(first).resolves.toMatchObject({ replayed: false });
      expect(up.calls).toBe(1);
    });

    it("does nothing for a call without an idempotency key", async () => {
      const idem = idempotency();
      const up = upstream();
      const s = scope({ idempotencyKey: "" });
      await idem.run(s, within(), up.fn("req-1"));
      await idem.run(s, within(), up.fn("req-2"));
      expect(up.calls).toBe(2);
    });

    it("reports no store errors along the way", () => {
      expect(errors).toEqual([]);
    });
  });
}

idempotencySuite("idempotency in memory", () => {
  const shared = { store: undefined as KvStore | undefined };
  return {
    open(onError) {
      shared.store ??= createKvStore({ maxEntries: 1000, onError });
      return shared.store;
    },
    separateConnections: false,
  };
});

describeWithRedis("idempotency on Redis", (redisUrl) => {
  idempotencySuite("shared by replicas", () => ({
    open: (onError) => createKvStore({ redisUrl, maxEntries: 1000, onError, opTimeoutMs: 2_000 }),
    separateConnections: true,
  }));

  describe("storage", () => {
    let store: KvStore;
    let raw: ReturnType<typeof createClient>;
    beforeAll(async () => {
      store = createKvStore({ redisUrl, maxEntries: 10, onError: () => {}, opTimeoutMs: 2_000 });
      raw = createClient({ url: redisUrl });
      await raw.connect();
      expect(await store.ready(5_000)).toBe(true);
    });
    afterAll(async () => {
      await store?.close();
      await raw?.close();
    });

    it("keeps the finished result under llm:v1:idem:<tenant>:<sha256(key)> for the window, cost as a string", async () => {
      const tenant = `tenant-${randomUUID()}`;
      const key = `key-${randomUUID()}`;
      const idem = new Idempotency({ store, windowMs: 120_000, onError: () => {} });
      await idem.run({ tenant, idempotencyKey: key, requestKey: "llm:v1:cache:r" }, within(), async () => result("req-1"));
      const storageKey = `llm:v1:idem:${tenant}:${createHash("sha256").update(key).digest("hex")}`;
      expect(idempotencyStorageKey(tenant, key)).toBe(storageKey);
      const pttl = await raw.pTTL(storageKey);
      expect(pttl).toBeGreaterThan(110_000);
      expect(pttl).toBeLessThanOrEqual(120_000);
      expect(await raw.get(storageKey)).toContain('"costUsdNanos":"123456789012"');
    });
  });
});

describe("idempotency when the store is down", () => {
  it("runs the call without idempotency and reports the failure", async () => {
    const errors: Error[] = [];
    const onError = (err: Error) => errors.push(err);
    const store = createKvStore({ redisUrl: `redis://127.0.0.1:${await closedPort()}`, maxEntries: 10, onError });
    const idem = new Idempotency({ store, windowMs: 60_000, onError });
    const up = upstream();
    const s: IdempotencyScope = { tenant: "t", idempotencyKey: "k", requestKey: "r" };
    await expect(idem.run(s, within(), up.fn("req-1"))).resolves.toEqual({ result: result("req-1"), replayed: false });
    await expect(idem.run(s, within(), up.fn("req-2"))).resolves.toEqual({ result: result("req-2"), replayed: false });
    expect(up.calls).toBe(2);
    expect(idem.stats.degraded).toBe(2);
    expect(errors.length).toBeGreaterThan(0);
    await store.close();
  });

  it("still makes duplicates in the same process wait for the first", async () => {
    const store = createKvStore({ redisUrl: `redis://127.0.0.1:${await closedPort()}`, maxEntries: 10, onError: () => {} });
    const idem = new Idempotency({ store, windowMs: 60_000, onError: () => {} });
    const up = upstream();
    up.hold();
    const s: IdempotencyScope = { tenant: "t", idempotencyKey: "k", requestKey: "r" };
    const first = idem.run(s, within(), up.fn("req-1"));
    const duplicate = idem.run(s, within(), up.fn("req-2"));
    await up.started(1);
    up.release();
    expect(await duplicate).toEqual({ result: result("req-1"), replayed: true });
    await first;
    expect(up.calls).toBe(1);
    await store.close();
  });
});
