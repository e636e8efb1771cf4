/** Reads usage back out of the ledger: per-tenant totals and a per-model breakdown. */
import type { Kysely } from "kysely";
import type { UsageReport, UsageSource, UsageTotals } from "../core/types.js";
import type { DatabaseSchema } from "./schema.js";

/** An aggregate as the drivers return it: pg gives int8/numeric as strings; other drivers may give numbers. */
type Count = string | number | bigint;
type Aggregate = Count | null;

function toBigInt(value: Aggregate): bigint {
  if (value === null) return 0n;
  if (typeof value === "bigint") return value;
  if (typeof value === "number") return BigInt(Math.trunc(value));
  // SUM(bigint) is numeric; the sum of integers has no fraction, but be strict about it.
  const whole = value.includes(".") ? value.slice(0, value.indexOf(".")) : value;
  return BigInt(whole);
}

function toNumber(value: Aggregate): number {
  if (value === null) return 0;
  return Number(value);
}

export function emptyTotals(): UsageTotals {
  return { requests: 0, succeeded: 0, failed: 0, cached: 0, inputTokens: 0, outputTokens: 0, costUsdNanos: 0n };
}

function addTotals(into: UsageTotals, add: UsageTotals): void {
  into.requests += add.requests;
  into.succeeded += add.succeeded;
  into.failed += add.failed;
  into.cached += add.cached;
  into.inputTokens += add.inputTokens;
  into.outputTokens += add.outputTokens;
  into.costUsdNanos += add.costUsdNanos;
}

export class UsageQuery implements UsageSource {
  readonly #db: Kysely<DatabaseSchema>;

  constructor(db: Kysely<DatabaseSchema>) {
    this.#db = db;
  }

  /**
   * Usage of one tenant for requests started in [start, end): `failed` counts failed and
   * cancelled requests, `cached` the requests answered from the cache.
   */
  async usage(tenant: string, start: Date, end: Date): Promise<UsageReport> {
    const rows = await this.#db
      .selectFrom("generations")
      .select((eb) => [
        "model",
        eb.fn.countAll<Count>().as("requests"),
        eb.fn.countAll<Count>().filterWhere("status", "=", "ok").as("succeeded"),
        eb.fn.countAll<Count>().filterWhere("status", "in", ["failed", "cancelled"]).as("failed"),
        eb.fn.countAll<Count>().filterWhere("cached", "=", true).as("cached"),
        eb.fn.sum<Aggregate>("input_tokens").as("input_tokens"),
        eb.fn.sum<Aggregate>("output_tokens").as("output_tokens"),
        eb.fn.sum<Aggregate>("cost_usd_nanos").as("cost_usd_nanos"),
      ])
      .where("tenant", "=", tenant)
      .where("started_at", ">=", start)
      .where("started_at", "<", end)
      .groupBy("model")
      .orderBy("model")
      .execute();

    const totals = emptyTotals();
    const byModel = rows.map((row) => {
      const modelTotals: UsageTotals = {
        requests: toNumber(row.requests),
        succeeded: toNumber(row.succeeded),
        failed: toNumber(row.failed),
        cached: toNumber(row.cached),
        inputTokens: toNumber(row.input_tokens),
        outputTokens: toNumber(row.output_tokens),
        costUsdNanos: toBigInt(row.cost_usd_nanos),
      };
      addTotals(totals, modelTotals);
      return { model: row.model, totals: modelTotals };
    });
    return { tenant, start, end, totals, byModel };
  }
}
