/** Domain types shared by core, router, providers and ledger. Nothing here knows proto or Connect. */
import type { AttemptRecord, LlmError } from "../errors/llm-error.js";

export type Role = "system" | "user" | "assistant";

export interface ChatMessage {
  role: Role;
  content: string;
}

export type CacheMode = "default" | "bypass" | "force" | "refresh";

/**
 * The shape the answer must take (structured output). JSON formats are checked on the final
 * answer: a mismatch fails the call with OUTPUT_SCHEMA_MISMATCH unless `passThroughMismatch`.
 */
export type ResponseFormat =
  | { type: "text" }
  | { type: "json_object"; passThroughMismatch: boolean }
  | {
      type: "json_schema";
      /** The schema's name ("response" when the caller gave none). */
      name: string;
      /** The JSON Schema as the caller sent it, JSON text. */
      schemaJson: string;
      /** Ask the provider to follow the schema exactly (OpenAI strict mode). */
      strict: boolean;
      passThroughMismatch: boolean;
    };

export interface GenerationRequest {
  model: string;
  messages: ChatMessage[];
  system: string;
  temperature?: number;
  topP?: number;
  maxOutputTokens?: number;
  stop: string[];
  seed?: bigint;
  fallbackModels: string[];
  cache: { mode: CacheMode; ttlSeconds: number };
  metadata: Record<string, string>;
  idempotencyKey: string;
  /** Absent: text. */
  responseFormat?: ResponseFormat;
}

export type FinishReason = "stop" | "length" | "content_filter" | "unspecified";

/**
 * Token counts of one generation. The details are parts of the two totals, never added to them:
 * absent means none, or a provider that does not report them (Ollama reports none).
 */
export interface TokenUsage {
  /** Every prompt token: uncached, read from the prompt cache and written to it. */
  inputTokens: number;
  /** Every completion token, reasoning included. */
  outputTokens: number;
  /** Of inputTokens, read from the provider's prompt cache (OpenAI cached_tokens, Anthropic cache_read_input_tokens). */
  cachedInputTokens?: number;
  /** Of inputTokens, written to the provider's prompt cache (Anthropic cache_creation_input_tokens). */
  cacheWriteInputTokens?: number;
  /** Of outputTokens, spent reasoning (OpenAI reasoning_tokens); billed as output. */
  reasoningTokens?: number;
}

export interface GenerationResult {
  id: string;
  model: string;
  provider: string;
  text: string;
  finishReason: FinishReason;
  usage: TokenUsage;
  costUsdNanos: bigint;
  cached: boolean;
  attempts: number;
}

export type GenerationEvent =
  | { type: "started"; id: string; model: string; provider: string }
  | { type: "delta"; text: string }
  | {
      type: "completed";
      finishReason: FinishReason;
      usage: TokenUsage;
      costUsdNanos: bigint;
      cached: boolean;
      attempts: number;
    };

/** Limits a key or a tenant may carry; an absent field means no limit. */
export interface Limits {
  requestsPerMinute?: number;
  /** Input + output tokens per minute. */
  tokensPerMinute?: number;
  concurrentRequests?: number;
  /** USD budget per UTC calendar day, in billionths of a dollar. */
  budgetUsdNanosPerDay?: bigint;
  /** USD budget per UTC calendar month, in billionths of a dollar. */
  budgetUsdNanosPerMonth?: bigint;
}

/** Who is calling, resolved from the API key. */
export interface Principal {
  keyId: string;
  name: string;
  tenant: string;
  role: "admin" | "user";
  /** Model ids or glob patterns ("gpt-4o*", "sim/*") this key may use; empty means every model. */
  allowedModels?: string[];
  /** The key's own limits. */
  limits?: Limits;
  /** The tenant's limits, applied on top of the key's. */
  tenantLimits?: Limits;
}

/** Per-call facts the transport hands the core. */
export interface CallContext {
  /** The server's id for the call (a uuid, or `<id>.<index>` for a batch item): the ledger row's key. */
  requestId: string;
  /** The caller's x-request-id, when it sent one: a correlation id, not unique, never a key. */
  clientRequestId?: string;
  principal: Principal;
  /** Fires when the client cancels or the deadline passes. */
  signal: AbortSignal;
  /** Absolute deadline, in ms since the epoch (performance-independent wall clock). */
  deadline: number;
}

export type UsageStatus = "ok" | "failed" | "cancelled";

/** One row of the usage ledger: one per request, whatever its outcome. */
export interface UsageRecord {
  /** Unique id of the row (uuid). */
  id: string;
  /** The server's request id; the ledger never stores two rows for one. */
  requestId: string;
  /** The caller's x-request-id (a correlation id, not unique); absent when it sent none. */
  clientRequestId?: string;
  keyId: string;
  tenant: string;
  /** The model asked for (after alias resolution when it resolved). */
  model: string;
  /** The provider that answered, or "" when none did. */
  provider: string;
  status: UsageStatus;
  errorReason: string | null;
  inputTokens: number;
  outputTokens: number;
  /** Of inputTokens, read from the provider's prompt cache (0: none or not reported). */
  cachedInputTokens: number;
  /** Of inputTokens, written to the provider's prompt cache. */
  cacheWriteInputTokens: number;
  /** Of outputTokens, spent reasoning. */
  reasoningTokens: number;
  costUsdNanos: bigint;
  cached: boolean;
  attempts: AttemptRecord[];
  latencyMs: number;
  timeToFirstTokenMs: number | null;
  startedAt: Date;
  finishedAt: Date;
  metadata: Record<string, string>;
}

export interface UsageTotals {
  requests: number;
  succeeded: number;
  failed: number;
  cached: number;
  inputTokens: number;
  outputTokens: number;
  cachedInputTokens: number;
  cacheWriteInputTokens: number;
  reasoningTokens: number;
  costUsdNanos: bigint;
}

export interface UsageReport {
  tenant: string;
  start: Date;
  end: Date;
  totals: UsageTotals;
  byModel: { model: string; totals: UsageTotals }[];
  byKey: { keyId: string; keyName: string; totals: UsageTotals }[];
  /** Days as YYYY-MM-DD (UTC), oldest first. */
  byDay: { day: string; totals: UsageTotals }[];
}

/** Where usage records go: off the hot path, batched, never lost on a clean shutdown. */
export interface UsageSink {
  /** Queues a record; never throws and never waits on the database. */
  record(record: UsageRecord): void;
  /** Writes everything queued so far. */
  flush(): Promise<void>;
}

export interface UsageSource {
  usage(tenant: string, start: Date, end: Date): Promise<UsageReport>;
}

export interface KeyAuthenticator {
  /** The principal for a presented secret, or null when it is unknown, revoked or expired. */
  authenticate(secret: string): Promise<Principal | null>;
}

export type { LlmError };

/** A request for embeddings: one vector per input. */
export interface EmbedRequest {
  model: string;
  inputs: string[];
  /** The vectors' length, for models that can shorten them; the model's own when absent. */
  dimensions?: number;
  fallbackModels: string[];
  cache: { mode: CacheMode; ttlSeconds: number };
  metadata: Record<string, string>;
}

/** The vectors of an Embed call, in input order. */
export interface EmbedResult {
  id: string;
  model: string;
  provider: string;
  vectors: Float32Array[];
  usage: TokenUsage;
  costUsdNanos: bigint;
  cached: boolean;
  attempts: number;
}
