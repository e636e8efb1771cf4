/** The Redis-backed KvStore; kv-store.ts imports this module only when a Redis URL is configured. */
import KeyvRedis, { createClient } from "@keyv/redis";
import { asError, keyvOver, wholeMs, type KvStore, type KvStoreOptions, type SetIfAbsentResult } from "./kv-store.js";

const DEFAULT_OP_TIMEOUT_MS = 50;
const DEFAULT_CONNECT_TIMEOUT_MS = 1000;
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
