import type { FinishReason, TokenUsage } from "../core/types.js";

/** A finished generation as the cache keeps it: enough to answer unary calls and replay streams. */
export interface CachedGeneration {
  model: string;
  provider: string;
  /** The text in the pieces it was streamed in, so a replay looks like the original stream. */
  chunks: string[];
  finishReason: FinishReason;
  usage: TokenUsage;
  /** An Embed call's vectors, each as the base64 of its little-endian float32 bytes (chunks then empty). */
  vectors?: string[];
  /** When it was written, ms since the epoch. */
  createdAt: number;
}

/** The response cache: failures are misses, never errors. */
export interface ResponseCache {
  get(key: string): Promise<CachedGeneration | undefined>;
  set(key: string, value: CachedGeneration, ttlMs: number): Promise<void>;
  /** Resolves true once the backing store can serve (at once in memory), false if not within timeoutMs. */
  ready?(timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}
