/**
 * Limits as the key store keeps them: a jsonb object of snake_case fields, counts as numbers and
 * budgets as decimal strings of USD nanos, on an API key and on a tenant. A change (LimitsPatch) is
 * checked and merged into the stored object in one statement.
 */
import { sql, type RawBuilder } from "kysely";
import type { Limits } from "../core/types.js";
import type { StoredLimits } from "../ledger/schema.js";
import { ApiKeyInputError } from "./key-input.js";

/** A change to limits: a field set to a value sets it, set to null removes it, left out stays as it is. */
export type LimitsPatch = { [K in keyof Limits]?: Limits[K] | null };

/** How each limit is stored in the limits JSON, and what kind of value it takes. */
const LIMIT_FIELDS = [
  { field: "requestsPerMinute", stored: "requests_per_minute", kind: "count" },
  { field: "tokensPerMinute", stored: "tokens_per_minute", kind: "count" },
  { field: "concurrentRequests", stored: "concurrent_requests", kind: "count" },
  { field: "budgetUsdNanosPerDay", stored: "budget_usd_nanos_per_day", kind: "nanos" },
  { field: "budgetUsdNanosPerMonth", stored: "budget_usd_nanos_per_month", kind: "nanos" },
] as const satisfies readonly { field: keyof Limits; stored: keyof StoredLimits; kind: "count" | "nanos" }[];

/** A validated LimitsPatch in storage terms: what to set and which stored fields to remove. */
export interface StoredLimitsPatch {
  set: StoredLimits;
  clear: (keyof StoredLimits)[];
}


/**
 * Checks a limits change: counts are positive safe integers, budgets non-negative bigint nanos,
 * null removes a limit. Unknown fields are refused, so a misspelt limit cannot silently be no limit.
 */
export function storedLimitsPatch(patch: LimitsPatch, whose: string): StoredLimitsPatch {
  if (typeof patch !== "object" || patch === null) throw new ApiKeyInputError(`${whose} limits must be an object`);
  const known = new Set<string>(LIMIT_FIELDS.map((f) => f.field));
  for (const field of Object.keys(patch)) {
    if (!known.has(field)) throw new ApiKeyInputError(`unknown limit ${JSON.stringify(field)}`);
  }
  const set: Record<string, number | string> = {};
  const clear: (keyof StoredLimits)[] = [];
  for (const { field, stored, kind } of LIMIT_FIELDS) {
    const value: unknown = patch[field];
    if (value === undefined) continue;
    if (value === null) {
      clear.push(stored);
    } else if (kind === "count") {
      if (typeof value !== "number" || !Number.isSafeInteger(value) || value <= 0) {
        throw new ApiKeyInputError(`${whose} ${field} must be a positive integer, got ${String(value)}`);
      }
      set[stored] = value;
    } else {
      if (typeof value !== "bigint" || value < 0n) {
        throw new ApiKeyInputError(`${whose} ${field} must be a non-negative bigint of USD nanos, got ${String(value)}`);
      }
      set[stored] = value.toString();
    }
  }
  return { set: set as StoredLimits, clear };
}

/** Limits read back from the database. Malformed JSON throws: a limit is never silently dropped. */
export function limitsFromStored(stored: unknown, whose: string): Limits {
  if (typeof stored !== "object" || stored === null || Array.isArray(stored)) {
    throw new Error(`stored limits of ${whose} are not a JSON object`);
  }
  const json = stored as Record<string, unknown>;
  const limits: Limits = {};
  for (const { field, stored: key, kind } of LIMIT_FIELDS) {
    const value = json[key];
    if (value === undefined || value === null) continue;
    if (kind === "count") {
      if (typeof value !== "number" || !Number.isSafeInteger(value) || value <= 0) {
        throw new Error(`stored limit ${key} of ${whose} is not a positive integer`);
      }
      limits[field] = value;
    } else {
      if (typeof value !== "string" || !/^\d+$/.test(value)) {
        throw new Error(`stored limit ${key} of ${whose} is not a decimal string of nanos`);
      }
      limits[field] = BigInt(value);
    }
  }
  return limits;
}

/** `(column || set) - clear…` : merges a patch into a jsonb limits column in one statement. */
export function mergedLimits(column: string, patch: StoredLimitsPatch): RawBuilder<string> {
  let merged = sql<string>`(${sql.ref(column)} || ${JSON.stringify(patch.set)}::jsonb)`;
  for (const key of patch.clear) merged = sql<string>`(${merged} - ${key}::text)`;
  return merged;
}

/** No limit set at all. */
export function hasNoLimits(limits: Limits): boolean {
  return Object.keys(limits).length === 0;
}
