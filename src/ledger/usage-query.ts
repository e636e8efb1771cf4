/** Reads usage back out of the ledger: per-tenant totals and a per-model breakdown. */
import { sql, type Kysely } from "kysely";
import type { UsageReport, UsageSource, UsageTotals } from "../core/types.js";
import { databaseUnavailable } from "./database-unavailable.js";
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
  return {
    requests: 0,
    succeeded: 0,
    failed: 0,
    cached: 0,
    inputTokens: 0,
    outputTokens: 0,
    cachedInputTokens: 0,
    cacheWriteInputTokens: 0,
    reasoningTokens: 0,
    costUsdNanos: 0n,
  };
}

function addTotals(into: UsageTotals, add: UsageTotals): void {
  into.requests += add.requests;
  into.succeeded += add.succeeded;
  into.failed += add.failed;
  into.cached += add.cached;
  into.inputTokens += add.inputTokens;
  into.outputTokens += add.outputTokens;
  into.cachedInputTokens += add.cachedInputTokens;
  into.cacheWriteInputTokens += add.cacheWriteInputTokens;
  into.reasoningTokens += add.reasoningTokens;
  into.costUsdNanos += add.costUsdNanos;
}

export class UsageQuery implements UsageSource {
  readonly #db: Kysely<DatabaseSchema>;

  constructor(db: Kysely<DatabaseSchema>) {
    this.#db = db;
  }

  /**
   * Usage of one tenant for requests started in [start, end), with breakdowns by
   * model, by key and by UTC day: `failed` counts failed and cancelled requests,
   * `cached` the requests answered from the cache.
   */
  async usage(tenant: string, start: Date, end: Date): Promise<UsageReport> {
    const day = sql<string>`to_char(started_at at time zone 'UTC', 'YYYY-MM-DD')`;
    const rows = await this.#db
      .selectFrom("generations")
      .select((eb) => [
        "model",
        "key_id",
        day.as("day"),
        eb.fn.countAll<Count>().as("requests"),
        eb.fn.countAll<Count>().filterWhere("status", "=", "ok").as("succeeded"),
        eb.fn.countAll<Count>().filterWhere("status", "in", ["failed", "cancelled"]).as("failed"),
        eb.fn.countAll<Count>().filterWhere("cached", "=", true).as("cached"),
        eb.fn.sum<Aggregate>("input_tokens").as("input_tokens"),
        eb.fn.sum<Aggregate>("output_tokens").as("output_tokens"),
        eb.fn.sum<Aggregate>("cached_input_tokens").as("cached_input_tokens"),
        eb.fn.sum<Aggregate>("cache_write_input_tokens").as("cache_write_input_tokens"),
        eb.fn.sum<Aggregate>("reasoning_tokens").as("reasoning_tokens"),
        eb.fn.sum<Aggregate>("cost_usd_nanos").as("cost_usd_nanos"),
      ])
      .where("tenant", "=", tenant)
      .where("started_at", ">=", start)
      .where("started_at", "<", end)
      .groupBy(["model", "key_id", day])
      .execute()
      .catch((err: unknown) => {
        throw databaseUnavailable("usage cannot be read", err);
      });

    const totals = emptyTotals();
    const byModel = new Map<string, UsageTotals>();
    const byKey = new Map<string, UsageTotals>();
    const byDay = new Map<string, UsageTotals>();
    const into = (map: Map<string, UsageTotals>, name: string, add: UsageTotals) => {
      let t = map.get(name);
      if (!t) map.set(name, (t = emptyTotals()));
      addTotals(t, add);
    };
    for (const row of rows) {
      const group: UsageTotals = {
        requests: toNumber(row.requests),
        succeeded: toNumber(row.succeeded),
        failed: toNumber(row.failed),
        cached: toNumber(row.cached),
        inputTokens: toNumber(row.input_tokens),
        outputTokens: toNumber(row.output_tokens),
        cachedInputTokens: toNumber(row.cached_input_tokens),
        cacheWriteInputTokens: toNumber(row.cache_write_input_tokens),
        reasoningTokens: toNumber(row.reasoning_tokens),
        costUsdNanos: toBigInt(row.cost_usd_nanos),
      };
      addTotals(totals, group);
      into(byModel, row.model, group);
      into(byKey, row.key_id, group);
      into(byDay, row.day, group);
    }
    const keyIds = [...byKey.keys()];
    const names =
      keyIds.length === 0
        ? []
        : await this.#db
            .selectFrom("api_keys")
            .select(["id", "name"])
            .where("id", "in", keyIds)
            .execute()
            .catch((err: unknown) => {
              throw databaseUnavailable("usage cannot be read", err);
            });
    const nameOf = new Map(names.map((n) => [n.id, n.name]));
    const sorted = (map: Map<string, UsageTotals>) => [...map.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return {
      tenant,
      start,
      end,
      totals,
      byModel: sorted(byModel).map(([model, t]) => ({ model, totals: t })),
      byKey: sorted(byKey).map(([keyId, t]) => ({ keyId, keyName: nameOf.get(keyId) ?? "", totals: t })),
      byDay: sorted(byDay).map(([d, t]) => ({ day: d, totals: t })),
    };
  }
}
