/** The Redis-backed KvStore; kv-store.ts imports this module only when a Redis URL is configured. */
import KeyvRedis, { createClient } from "@keyv/redis";
import { TimeoutError } from "@redis/client";
import { asError } from "../core/as-error.js";
import { keyvOver, wholeMs, type KvStore, type KvStoreOptions, type SetIfAbsentResult } from "./kv-store.js";
import { StoreHealth } from "./store-health.js";

const DEFAULT_OP_TIMEOUT_MS = 50;
const DEFAULT_CONNECT_TIMEOUT_MS = 1000;
/** An unhealthy store's PING rounds: cheap, and a store that was only briefly slow is used again soon. */
const DEFAULT_PROBE_INTERVAL_MS = 250;
/** close() lets writes already sent land; they are bounded by the op timeout, so this is ample. */
const CLOSE_TIMEOUT_MS = 250;

/** A KvStore on Redis at `url` (see KvStore for the never-throw, never-hang contract). */
export function createRedisStore(options: KvStoreOptions, url: string): KvStore {
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
  const health = new StoreHealth({
    ping: () => client.ping(),
    timeoutMs: opTimeoutMs,
    probeIntervalMs: options.probeIntervalMs ?? DEFAULT_PROBE_INTERVAL_MS,
    ...(options.onHealthChange ? { onChange: options.onHealthChange } : {}),
  });

  /**
   * The operation's result, or the fallback after onError when it fails or outlives the timeout.
   * A timeout trips the health: this and every operation still waiting get the fallback at once,
   * and later ones do not touch Redis until it answers a probe.
   */
  const bounded = <R>(what: string, fallback: R, op: () => Promise<R>): Promise<R> => {
    if (closed || !health.healthy) return Promise.resolve(fallback);
    return new Promise<R>((resolve) => {
      let done = false;
      const finish = (value: R) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        release();
        resolve(value);
      };
      const release = health.hold(() => finish(fallback));
      const timedOut = (err: Error) => {
        if (done) return;
        options.onError(new Error(`redis ${what} failed; Redis is bypassed until it answers`, { cause: err }));
        finish(fallback);
        health.trip(err);
      };
      // A second, wider bound around everything keyv does, in case something outside a command waits.
      // It yields to I/O once before it counts, so a reply that came while the event loop was busy is taken.
      const timer = setTimeout(() => setImmediate(() => timedOut(new Error(`timed out after ${opTimeoutMs} ms`))), opTimeoutMs + 10);
      op().then(finish, (err: unknown) => {
        const error = asError(err);
        // node-redis's own command timeout (a command it could not write in time) means the same.
        if (error instanceof TimeoutError) return timedOut(error);
        if (done) return;
        options.onError(new Error(`redis ${what} failed`, { cause: error }));
        finish(fallback);
      });
    });
  };

  return {
    kind: "redis",
    get healthy() {
      return health.healthy;
    },
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
      await health.close();
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
