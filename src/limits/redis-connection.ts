import { createClient } from "@redis/client";
import type { RedisCommandClient } from "./redis-script.js";

export interface RedisConnectionOptions {
  url: string;
  /** How long `ready` waits for the first connection. Default 2 s. */
  connectWaitMs?: number;
  /** Longest pause between reconnection attempts. Default 1 s. */
  maxReconnectDelayMs?: number;
  /** Connection errors (each failed reconnect attempt emits one), for a log line. */
  onError?: (err: unknown) => void;
}

/** A Redis client for the limiter, with the lifecycle around it. */
export interface RedisConnection {
  readonly client: RedisCommandClient;
  /** Whether the connection is up and commands can be sent. */
  readonly isReady: boolean;
  /** Resolves true once connected; false when the first attempt failed or `connectWaitMs` passed first (it goes on connecting). */
  readonly ready: Promise<boolean>;
  /** Resolves when the connection is up: at once, or at the next (re)connection. */
  onceReady(): Promise<void>;
  /** Closes the connection at once; replies still pending fail (a settle among them is dropped). */
  close(): Promise<void>;
}

/**
 * Connects to Redis without ever blocking the service on it: connecting and reconnecting go on in
 * the background forever (until close), and while the connection is down commands fail at once
 * (no offline queue), so the limiter can fall back instead of waiting.
 */
export function openRedisConnection(options: RedisConnectionOptions): RedisConnection {
  const maxDelay = options.maxReconnectDelayMs ?? 1_000;
  const onError = options.onError ?? (() => {});
  const client = createClient({
    url: options.url,
    disableOfflineQueue: true,
    socket: {
      connectTimeout: 1_000,
      reconnectStrategy: (retries: number) => Math.min(50 * 2 ** Math.min(retries, 10), maxDelay) + Math.floor(Math.random() * 50),
    },
  });
  let firstAttemptFailed: ((ok: false) => void) | undefined;
  // Without a listener an 'error' event would crash the process.
  client.on("error", (err: unknown) => {
    firstAttemptFailed?.(false);
    onError(err);
  });

  const connected = client.connect().then(
    () => true,
    (err: unknown) => {
      onError(err);
      return false;
    },
  );
  // Ready when connected; not ready when the first attempt fails (refused, unreachable) or takes too long.
  const ready = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), options.connectWaitMs ?? 2_000);
    timer.unref();
    firstAttemptFailed = (ok) => {
      clearTimeout(timer);
      resolve(ok);
    };
    void connected.then((ok) => {
      clearTimeout(timer);
      resolve(ok);
    });
  }).finally(() => {
    firstAttemptFailed = undefined;
  });

  return {
    client: {
      sendCommand: (args) => client.sendCommand(args),
    },
    get isReady() {
      return client.isReady;
    },
    ready,
    onceReady() {
      if (client.isReady) return Promise.resolve();
      return new Promise<void>((resolve) => client.once("ready", () => resolve()));
    },
    close() {
      // destroy, not close: close() waits for every pending reply, forever when the server is stalled.
      try {
        if (client.isOpen) client.destroy();
      } catch (err) {
        onError(err);
      }
      return Promise.resolve();
    },
  };
}
