import { randomUUID } from "node:crypto";
import type { UsageRecord } from "../../src/core/types.js";

/** A complete usage record for ledger tests; overrides replace any field. */
export function usageRecord(tenant: string, overrides: Partial<UsageRecord> = {}): UsageRecord {
  const startedAt = new Date("2026-03-01T12:00:00.000Z");
  return {
    id: randomUUID(),
    requestId: randomUUID(),
    keyId: "key-1",
    tenant,
    model: "sim-small",
    provider: "sim",
    status: "ok",
    errorReason: null,
    inputTokens: 10,
    outputTokens: 20,
    cachedInputTokens: 0,
    cacheWriteInputTokens: 0,
    reasoningTokens: 0,
    costUsdNanos: 1_500n,
    cached: false,
    attempts: [{ provider: "sim", deployment: "sim-small", reason: "OK", latencyMs: 12 }],
    latencyMs: 15,
    timeToFirstTokenMs: 5,
    startedAt,
    finishedAt: new Date(startedAt.getTime() + 15),
    metadata: { team: "search" },
    ...overrides,
  };
}
