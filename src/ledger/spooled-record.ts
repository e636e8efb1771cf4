/**
 * A usage record as one line of the spool's format: JSON, with the bigint cost as a decimal string
 * and dates as ISO 8601. The spool (usage-spool.ts), the journal (usage-journal.ts) and the
 * dead-letter file (dead-letter.ts) all write records this way.
 */
import type { UsageRecord, UsageStatus } from "../core/types.js";
import type { AttemptRecord } from "../errors/llm-error.js";

/** One line of JSON, without the newline. Throws for a record that has no faithful JSON form. */
export function encodeSpooledRecord(r: UsageRecord): string {
  return JSON.stringify({
    ...r,
    costUsdNanos: r.costUsdNanos.toString(),
    startedAt: r.startedAt.toISOString(),
    finishedAt: r.finishedAt.toISOString(),
  });
}

/** The inverse of encodeSpooledRecord; throws when the line is not a complete record. */
export function decodeSpooledRecord(line: string): UsageRecord {
  const o: unknown = JSON.parse(line);
  if (typeof o !== "object" || o === null || Array.isArray(o)) throw new Error("not a JSON object");
  const v = o as Record<string, unknown>;
  const str = (k: string): string => {
    if (typeof v[k] !== "string") throw new Error(`${k} is not a string`);
    return v[k];
  };
  const num = (k: string): number => {
    if (typeof v[k] !== "number") throw new Error(`${k} is not a number`);
    return v[k];
  };
  // Absent in records spooled before the ledger kept them: none.
  const count = (k: string): number => (v[k] === undefined ? 0 : num(k));
  const date = (k: string): Date => {
    const d = new Date(str(k));
    if (Number.isNaN(d.getTime())) throw new Error(`${k} is not a date`);
    return d;
  };
  const cost = str("costUsdNanos");
  if (!/^-?\d+$/.test(cost)) throw new Error("costUsdNanos is not an integer");
  if (v["errorReason"] !== null) str("errorReason");
  if (v["timeToFirstTokenMs"] !== null) num("timeToFirstTokenMs");
  if (typeof v["cached"] !== "boolean") throw new Error("cached is not a boolean");
  if (!Array.isArray(v["attempts"])) throw new Error("attempts is not an array");
  const metadata = v["metadata"];
  if (typeof metadata !== "object" || metadata === null || Array.isArray(metadata)) throw new Error("metadata is not an object");
  return {
    id: str("id"),
    requestId: str("requestId"),
    ...(typeof v["clientRequestId"] === "string" ? { clientRequestId: v["clientRequestId"] } : {}),
    keyId: str("keyId"),
    tenant: str("tenant"),
    model: str("model"),
    provider: str("provider"),
    status: str("status") as UsageStatus,
    errorReason: v["errorReason"] as string | null,
    inputTokens: num("inputTokens"),
    outputTokens: num("outputTokens"),
    cachedInputTokens: count("cachedInputTokens"),
    cacheWriteInputTokens: count("cacheWriteInputTokens"),
    reasoningTokens: count("reasoningTokens"),
    costUsdNanos: BigInt(cost),
    cached: v["cached"],
    attempts: v["attempts"] as AttemptRecord[],
    latencyMs: num("latencyMs"),
    timeToFirstTokenMs: v["timeToFirstTokenMs"] as number | null,
    startedAt: date("startedAt"),
    finishedAt: date("finishedAt"),
    metadata: metadata as Record<string, string>,
  };
}
