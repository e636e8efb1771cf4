import type { DeploymentConfig } from "../config.js";
import type { ChatMessage, FinishReason, TokenUsage } from "../core/types.js";

/** What a provider is asked to do, after routing chose the deployment. */
export interface ProviderRequest {
  system: string;
  messages: ChatMessage[];
  temperature?: number;
  topP?: number;
  maxOutputTokens: number;
  stop: string[];
  seed?: bigint;
  /** Caller metadata (the sim reads its scripted-failure knobs here). */
  metadata: Record<string, string>;
  /**
   * False when the caller wants the whole answer at once (Generate, BatchGenerate): an adapter
   * may then make one non-streamed upstream call (cheaper to parse) and yield the text as a
   * single delta. Absent or true: stream from the upstream.
   */
  stream?: boolean;
}

export type ProviderEvent =
  | { type: "delta"; text: string }
  | { type: "done"; finishReason: FinishReason; usage: TokenUsage };

export interface AttemptOptions {
  /** Fires at the attempt's timeout and when the client cancels; its reason is an LlmError. */
  signal: AbortSignal;
  /** The attempt's time budget; it may have a fraction of a millisecond (use sdkTimeoutMs for an SDK). */
  timeoutMs: number;
}

/**
 * An adapter over one vendor. It streams text deltas and ends with exactly one
 * "done" event; it throws only LlmError (the taxonomy), never a vendor error.
 */
export interface Provider {
  readonly name: string;
  stream(deployment: DeploymentConfig, request: ProviderRequest, options: AttemptOptions): AsyncIterable<ProviderEvent>;
}
