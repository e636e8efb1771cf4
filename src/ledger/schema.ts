/** Kysely table types for the ledger database (generations, API keys and tenants). */
import type { ColumnType, Generated, Insertable, Selectable } from "kysely";
import type { UsageStatus } from "../core/types.js";
import type { AttemptRecord } from "../errors/llm-error.js";

/**
 * int8 and numeric values come back as decimal strings: node-postgres does this by default and
 * `openDatabase` configures PGlite the same way, so no value silently loses precision as a Number.
 */
export type Int8 = ColumnType<string, string, string>;

/** jsonb: read as parsed JSON, written as JSON text (node-postgres would turn a JS array into a Postgres array). */
export type Json<T> = ColumnType<T, string, string>;

/** jsonb with a column default: may be left out of an insert. */
export type JsonWithDefault<T> = ColumnType<T, string | undefined, string>;

/**
 * Limits as stored in a jsonb column (see `Limits` in core/types.ts); an absent field is no limit.
 * Budgets are decimal strings of nanos, because a JSON number would lose precision past 2^53.
 */
export interface StoredLimits {
  requests_per_minute?: number;
  tokens_per_minute?: number;
  concurrent_requests?: number;
  budget_usd_nanos_per_day?: string;
  budget_usd_nanos_per_month?: string;
}

/** One row per request: the usage ledger. */
export interface GenerationsTable {
  id: string;
  /** The server's request id (unique): the row's key, never chosen by the caller. */
  request_id: string;
  /** The caller's x-request-id: a correlation id, indexed, not unique; null when none was sent (and in rows older than 0004). */
  client_request_id: ColumnType<string | null, string | null | undefined, string | null>;
  key_id: string;
  tenant: string;
  model: string;
  provider: string;
  status: UsageStatus;
  error_reason: string | null;
  input_tokens: number;
  output_tokens: number;
  /** Of input_tokens, read from the provider's prompt cache (0 in rows older than 0005). */
  cached_input_tokens: ColumnType<number, number | undefined, number>;
  /** Of input_tokens, written to the provider's prompt cache. */
  cache_write_input_tokens: ColumnType<number, number | undefined, number>;
  /** Of output_tokens, spent reasoning. */
  reasoning_tokens: ColumnType<number, number | undefined, number>;
  cost_usd_nanos: Int8;
  cached: boolean;
  /** The AttemptRecord[] that led to the outcome. */
  attempts: Json<AttemptRecord[]>;
  latency_ms: number;
  time_to_first_token_ms: number | null;
  started_at: Date;
  finished_at: Date;
  metadata: Json<Record<string, string>>;
}

export type ApiKeyRole = "admin" | "user";

/** API keys: a salted, keyed hash of the key, never the key itself. */
export interface ApiKeysTable {
  id: string;
  /** Non-secret lookup handle, the `<prefix>` in `llm_<prefix>_<secret>`. */
  prefix: string;
  /** Per-key random salt, base64url. */
  salt: string;
  /** HMAC-SHA256(key = salt, data = the full presented key), base64url. */
  hash: string;
  name: string;
  tenant: string;
  role: ApiKeyRole;
  created_at: Generated<Date>;
  expires_at: Date | null;
  revoked_at: Date | null;
  /** Model ids or glob patterns the key may use; empty means every model. */
  allowed_models: JsonWithDefault<string[]>;
  /** The key's own limits. */
  limits: JsonWithDefault<StoredLimits>;
  /** Set while the key is disabled (unlike revocation, this can be undone). */
  disabled_at: Date | null;
}

/** Tenants with limits of their own, applied on top of their keys' limits. A key's tenant needs no row here. */
export interface TenantsTable {
  name: string;
  limits: JsonWithDefault<StoredLimits>;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface DatabaseSchema {
  generations: GenerationsTable;
  api_keys: ApiKeysTable;
  tenants: TenantsTable;
}

export type GenerationRow = Selectable<GenerationsTable>;
export type NewGenerationRow = Insertable<GenerationsTable>;
export type ApiKeyRow = Selectable<ApiKeysTable>;
export type TenantRow = Selectable<TenantsTable>;
