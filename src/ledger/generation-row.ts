/** A usage record as a row of `generations`, and back (the ledger spools and dead-letters records, not rows). */
import type { UsageRecord } from "../core/types.js";
import type { AttemptRecord } from "../errors/llm-error.js";
import type { NewGenerationRow } from "./schema.js";

export function toGenerationRow(r: UsageRecord): NewGenerationRow {
  return {
    id: r.id,
    request_id: r.requestId,
    client_request_id: r.clientRequestId ?? null,
    key_id: r.keyId,
    tenant: r.tenant,
    model: r.model,
    provider: r.provider,
    status: r.status,
    error_reason: r.errorReason,
    input_tokens: r.inputTokens,
    output_tokens: r.outputTokens,
    cached_input_tokens: r.cachedInputTokens,
    cache_write_input_tokens: r.cacheWriteInputTokens,
    reasoning_tokens: r.reasoningTokens,
    cost_usd_nanos: r.costUsdNanos.toString(),
    cached: r.cached,
    attempts: JSON.stringify(r.attempts),
    latency_ms: Math.round(r.latencyMs),
    time_to_first_token_ms: r.timeToFirstTokenMs === null ? null : Math.round(r.timeToFirstTokenMs),
    started_at: r.startedAt,
    finished_at: r.finishedAt,
    metadata: JSON.stringify(r.metadata),
  };
}

/** The inverse of toGenerationRow, for spooling queued rows. */
export function toUsageRecord(row: NewGenerationRow): UsageRecord {
  return {
    id: row.id,
    requestId: row.request_id,
    ...(typeof row.client_request_id === "string" ? { clientRequestId: row.client_request_id } : {}),
    keyId: row.key_id,
    tenant: row.tenant,
    model: row.model,
    provider: row.provider,
    status: row.status,
    errorReason: row.error_reason ?? null,
    inputTokens: row.input_tokens,
    outputTokens: row.output_tokens,
    cachedInputTokens: row.cached_input_tokens ?? 0,
    cacheWriteInputTokens: row.cache_write_input_tokens ?? 0,
    reasoningTokens: row.reasoning_tokens ?? 0,
    costUsdNanos: BigInt(row.cost_usd_nanos),
    cached: row.cached,
    attempts: JSON.parse(row.attempts) as AttemptRecord[],
    latencyMs: row.latency_ms,
    timeToFirstTokenMs: row.time_to_first_token_ms ?? null,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    metadata: JSON.parse(row.metadata) as Record<string, string>,
  };
}
