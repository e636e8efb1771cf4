import type { DeploymentConfig } from "../config.js";
import type { ChatMessage, FinishReason, TokenUsage } from "../core/types.js";

/**
 * The JSON the answer must be, as a provider asks its vendor for it (absent: text). An adapter
 * whose vendor cannot ask for it refuses the request (INVALID_REQUEST naming the vendor) before
 * any upstream call, never dropping it: the service checks the answer either way.
 */
export type ProviderResponseFormat =
  | { type: "json_object" }
  | { type: "json_schema"; name: string; schema: Record<string, unknown>; strict: boolean };

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
  responseFormat?: ProviderResponseFormat;
}

export type ProviderEvent =
  | { type: "delta"; text: string }
  | { type: "done"; finishReason: FinishReason; usage: TokenUsage };

/** How a finished upstream call ended. */
export interface ProviderDone {
  finishReason: FinishReason;
  usage: TokenUsage;
}

/**
 * Where a provider pushes text deltas, synchronously, in upstream order. `delta` returns false
 * when the consumer holds more than it wants: the provider then awaits `drained()` before it
 * reads more of the upstream body (backpressure reaches the upstream socket).
 */
export interface DeltaSink {
  delta(text: string): boolean;
  drained(): Promise<void>;
}

export interface AttemptOptions {
  /** Fires at the attempt's timeout and when the client cancels; its reason is an LlmError. */
  signal: AbortSignal;
  /** The attempt's time budget; it may have a fraction of a millisecond (use sdkTimeoutMs for an SDK). */
  timeoutMs: number;
}

/**
 * An adapter over one vendor: a translator between our request and the vendor's wire format.
 * `generate` pushes the answer's text deltas into the sink as they arrive and resolves with how
 * it finished; it rejects only with LlmError (the taxonomy), never a vendor error.
 */
export interface Provider {
  readonly name: string;
  generate(deployment: DeploymentConfig, request: ProviderRequest, options: AttemptOptions, sink: DeltaSink): Promise<ProviderDone>;
  /** Embeddings, for a provider that has them (Anthropic has none); same error rules as `generate`. */
  embed?(deployment: DeploymentConfig, request: EmbedProviderRequest, options: AttemptOptions): Promise<EmbedDone>;
}

/** What a provider is asked to embed: the texts, in order, and the vectors' length if the caller chose one. */
export interface EmbedProviderRequest {
  inputs: string[];
  dimensions?: number;
  /** Caller metadata (the sim reads its scripted-failure knobs here). */
  metadata: Record<string, string>;
}

/** One vector per input, in input order, and the tokens the upstream counted (output 0). */
export interface EmbedDone {
  vectors: Float32Array[];
  usage: TokenUsage;
}
