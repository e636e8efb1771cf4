/**
 * The ledger's INSERT into `generations`: a batch of rows as one statement, one per-column array
 * each (unnest), one row per request id (ON CONFLICT (request_id) DO NOTHING: writing a record
 * twice, as a replay may, never counts it twice).
 */
import { InsertQueryNode, RawNode, ValueNode, ValuesNode, sql, type Kysely, type RawBuilder, type RootOperationNode } from "kysely";
import type { DatabaseSchema, NewGenerationRow } from "./schema.js";

/** Every column the ledger writes, in the order of the arrays unnestRows() passes. */
const GENERATION_COLUMNS = [
  "id",
  "request_id",
  "client_request_id",
  "key_id",
  "tenant",
  "model",
  "provider",
  "status",
  "error_reason",
  "input_tokens",
  "output_tokens",
  "cached_input_tokens",
  "cache_write_input_tokens",
  "reasoning_tokens",
  "cost_usd_nanos",
  "cached",
  "attempts",
  "latency_ms",
  "time_to_first_token_ms",
  "started_at",
  "finished_at",
  "metadata",
] as const satisfies readonly (keyof NewGenerationRow)[];

/**
 * The rows as `SELECT * FROM unnest($1::uuid[], ...)`: one array parameter per column instead
 * of one parameter per value, which costs PGlite (on the main thread) about a third less CPU per
 * row than a multi-row VALUES list (0.17 -> 0.11 ms per row in batches of 100). Same SQL on both drivers.
 * Values go in as the same strings, numbers, booleans and nulls as before, converted by the casts;
 * timestamps as ISO strings, so both drivers send the same text whatever their Date handling.
 */
function unnestRows(rows: readonly NewGenerationRow[]): RawBuilder<unknown> {
  const n = rows.length;
  const id = new Array<string>(n);
  const requestId = new Array<string>(n);
  const clientRequestId = new Array<string | null>(n);
  const keyId = new Array<string>(n);
  const tenant = new Array<string>(n);
  const model = new Array<string>(n);
  const provider = new Array<string>(n);
  const status = new Array<string>(n);
  const errorReason = new Array<string | null>(n);
  const inputTokens = new Array<number>(n);
  const outputTokens = new Array<number>(n);
  const cachedInputTokens = new Array<number>(n);
  const cacheWriteInputTokens = new Array<number>(n);
  const reasoningTokens = new Array<number>(n);
  const cost = new Array<string>(n);
  const cached = new Array<boolean>(n);
  const attempts = new Array<string>(n);
  const latency = new Array<number>(n);
  const ttft = new Array<number | null>(n);
  const startedAt = new Array<string>(n);
  const finishedAt = new Array<string>(n);
  const metadata = new Array<string>(n);
  for (let i = 0; i < n; i++) {
    const r = rows[i]!;
    id[i] = r.id;
    requestId[i] = r.request_id;
    clientRequestId[i] = r.client_request_id ?? null;
    keyId[i] = r.key_id;
    tenant[i] = r.tenant;
    model[i] = r.model;
    provider[i] = r.provider;
    status[i] = r.status;
    errorReason[i] = r.error_reason ?? null;
    inputTokens[i] = r.input_tokens;
    outputTokens[i] = r.output_tokens;
    cachedInputTokens[i] = r.cached_input_tokens ?? 0;
    cacheWriteInputTokens[i] = r.cache_write_input_tokens ?? 0;
    reasoningTokens[i] = r.reasoning_tokens ?? 0;
    cost[i] = r.cost_usd_nanos;
    cached[i] = r.cached;
    attempts[i] = r.attempts;
    latency[i] = r.latency_ms;
    ttft[i] = r.time_to_first_token_ms ?? null;
    startedAt[i] = r.started_at.toISOString();
    finishedAt[i] = r.finished_at.toISOString();
    metadata[i] = r.metadata;
  }
  return sql`select * from unnest(${id}::uuid[], ${requestId}::text[], ${clientRequestId}::text[], ${keyId}::text[], ${tenant}::text[], ${model}::text[], ${provider}::text[], ${status}::text[], ${errorReason}::text[], ${inputTokens}::int4[], ${outputTokens}::int4[], ${cachedInputTokens}::int4[], ${cacheWriteInputTokens}::int4[], ${reasoningTokens}::int4[], ${cost}::int8[], ${cached}::bool[], ${attempts}::jsonb[], ${latency}::int4[], ${ttft}::int4[], ${startedAt}::timestamptz[], ${finishedAt}::timestamptz[], ${metadata}::jsonb[])`;
}

/**
 * Rows written by a query, when it is one of the ledger's INSERTs into `generations` (an unnest of
 * per-column arrays, or a VALUES list): for plugins that watch the ledger's writes (tracing, tests).
 */
export function generationsInsertRows(node: RootOperationNode): number | undefined {
  if (!InsertQueryNode.is(node) || node.into?.table.identifier.name !== "generations" || node.values === undefined) return undefined;
  if (ValuesNode.is(node.values)) return node.values.values.length;
  if (RawNode.is(node.values)) {
    const first = node.values.parameters[0];
    if (first !== undefined && ValueNode.is(first) && Array.isArray(first.value)) return first.value.length;
  }
  return undefined;
}

/** Inserts the rows in one statement; a request id already written is skipped. */
export async function insertGenerations(db: Kysely<DatabaseSchema>, rows: readonly NewGenerationRow[]): Promise<void> {
  await db
    .insertInto("generations")
    .columns(GENERATION_COLUMNS)
    .expression(unnestRows(rows))
    .onConflict((oc) => oc.column("request_id").doNothing())
    .execute();
}
