/** The limit flags the keys CLI takes and prints (`--rpm 60`, `rpm=60`), and the Limits field each stands for. */
import type { Limits } from "../../core/types.js";

/** The limit flags, the Limits field each sets, and how its value is written. */
export const LIMIT_FLAGS = [
  { flag: "rpm", field: "requestsPerMinute", kind: "count" },
  { flag: "tpm", field: "tokensPerMinute", kind: "count" },
  { flag: "concurrency", field: "concurrentRequests", kind: "count" },
  { flag: "budget-day", field: "budgetUsdNanosPerDay", kind: "usd" },
  { flag: "budget-month", field: "budgetUsdNanosPerMonth", kind: "usd" },
] as const satisfies readonly { flag: string; field: keyof Limits; kind: "count" | "usd" }[];

export const LIMIT_OPTIONS = {
  rpm: { type: "string" },
  tpm: { type: "string" },
  concurrency: { type: "string" },
  "budget-day": { type: "string" },
  "budget-month": { type: "string" },
} as const;
