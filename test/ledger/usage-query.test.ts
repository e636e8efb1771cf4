import { randomUUID } from "node:crypto";
import { beforeAll, expect, it } from "vitest";
import type { UsageRecord, UsageTotals } from "../../src/core/types.js";
import { toGenerationRow } from "../../src/ledger/generation-row.js";
import { UsageQuery } from "../../src/ledger/usage-query.js";
import { describeEachDatabase } from "../helpers/postgres.js";

const T0 = new Date("2026-02-01T00:00:00.000Z");
const minutes = (n: number) => new Date(T0.getTime() + n * 60_000);

function usageRecord(tenant: string, overrides: Partial<UsageRecord> = {}): UsageRecord {
  const startedAt = overrides.startedAt ?? minutes(1);
  return {
    id: randomUUID(),
    requestId: randomUUID(),
    keyId: "key-1",
    tenant,
    model: "sim-small",
    provider: "sim",
    status: "ok",
    errorReason: null,
    inputTokens: 0,
    outputTokens: 0,
    cachedInputTokens: 0,
    cacheWriteInputTokens: 0,
    reasoningTokens: 0,
    costUsdNanos: 0n,
    cached: false,
    attempts: [],
    latencyMs: 10,
    timeToFirstTokenMs: null,
    startedAt,
    finishedAt: startedAt,
    metadata: {},
    ...overrides,
  };
}

function totals(partial: Partial<UsageTotals>): UsageTotals {
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
    ...partial,
  };
}

describeEachDatabase("UsageQuery", (database) => {
  const tenant = `acme-${randomUUID()}`;
  const other = `globex-${randomUUID()}`;

  beforeAll(async () => {
    const records = [
      usageRecord(tenant, { model: "gpt-a", inputTokens: 100, outputTokens: 50, cachedInputTokens: 64, reasoningTokens: 20, costUsdNanos: 1_000n }),
      usageRecord(tenant, { model: "gpt-a", inputTokens: 10, outputTokens: 5, costUsdNanos: 100n, cached: true }),
      usageRecord(tenant, { model: "gpt-a", status: "failed", errorReason: "PROVIDER_UNAVAILABLE" }),
      usageRecord(tenant, { model: "claude-b", inputTokens: 7, outputTokens: 3, cachedInputTokens: 2, cacheWriteInputTokens: 4, costUsdNanos: 2n ** 60n }),
      usageRecord(tenant, { model: "claude-b", inputTokens: 1, outputTokens: 1, costUsdNanos: 2n ** 60n, status: "cancelled", errorReason: "CANCELLED" }),
      // Outside [minutes(0), minutes(10)): at the end bound and before the start.
      usageRecord(tenant, { model: "gpt-a", inputTokens: 1_000, startedAt: minutes(10) }),
      usageRecord(tenant, { model: "gpt-a", inputTokens: 1_000, startedAt: minutes(-1) }),
      // Exactly at the start bound: inside.
      usageRecord(tenant, { model: "claude-b", inputTokens: 2, outputTokens: 2, costUsdNanos: 5n, startedAt: minutes(0) }),
      // Another tenant, same models and times.
      usageRecord(other, { model: "gpt-a", inputTokens: 9_999, costUsdNanos: 9_999n }),
    ];
    await database.db.insertInto("generations").values(records.map(toGenerationRow)).execute();
  });

  it("breaks usage down by model, and the totals are the sum of the models", async () => {
    const report = await new UsageQuery(database.db).usage(tenant, minutes(0), minutes(10));

    expect(report.tenant).toBe(tenant);
    expect(report.start).toEqual(minutes(0));
    expect(report.end).toEqual(minutes(10));
    expect(report.byModel).toEqual([
      {
        model: "claude-b",
        totals: totals({
          requests: 3,
          succeeded: 2,
          failed: 1,
          inputTokens: 10,
          outputTokens: 6,
          cachedInputTokens: 2,
          cacheWriteInputTokens: 4,
          costUsdNanos: 2n ** 61n + 5n,
        }),
      },
      {
        model: "gpt-a",
        totals: totals({
          requests: 3,
          succeeded: 2,
          failed: 1,
          cached: 1,
          inputTokens: 110,
          outputTokens: 55,
          cachedInputTokens: 64,
          reasoningTokens: 20,
          costUsdNanos: 1_100n,
        }),
      },
    ]);
    expect(report.totals).toEqual(
      totals({
        requests: 6,
        succeeded: 4,
        failed: 2,
        cached: 1,
        inputTokens: 120,
        outputTokens: 61,
        cachedInputTokens: 66,
        cacheWriteInputTokens: 4,
        reasoningTokens: 20,
        costUsdNanos: 2n ** 61n + 1_105n,
      }),
    );
  });

  it("does not count other tenants' rows", async () => {
    const report = await new UsageQuery(database.db).usage(other, minutes(0), minutes(10));
    expect(report.totals).toEqual(totals({ requests: 1, succeeded: 1, inputTokens: 9_999, costUsdNanos: 9_999n }));
    expect(report.byModel.map((m) => m.model)).toEqual(["gpt-a"]);
  });

  it("counts requests started at the start of the range but not at its end", async () => {
    const query = new UsageQuery(database.db);
    expect((await query.usage(tenant, minutes(10), minutes(11))).totals.inputTokens).toBe(1_000);
    expect((await query.usage(tenant, minutes(0), minutes(1))).totals).toEqual(
      totals({ requests: 1, succeeded: 1, inputTokens: 2, outputTokens: 2, costUsdNanos: 5n }),
    );
    expect((await query.usage(tenant, minutes(-60), minutes(60))).totals.requests).toBe(8);
  });

  it("reports zeros and no models for a tenant without usage", async () => {
    const report = await new UsageQuery(database.db).usage(`nobody-${randomUUID()}`, minutes(0), minutes(10));
    expect(report.totals).toEqual(totals({}));
    expect(report.byModel).toEqual([]);
  });
});

describeEachDatabase("UsageQuery breakdowns", (database) => {
  const tenant = `initech-${randomUUID()}`;
  const day1 = new Date("2026-03-01T23:59:00.000Z");
  const day2 = new Date("2026-03-02T00:01:00.000Z");

  beforeAll(async () => {
    const records = [
      usageRecord(tenant, { keyId: "k-a", inputTokens: 1, costUsdNanos: 10n, startedAt: day1 }),
      usageRecord(tenant, { keyId: "k-a", inputTokens: 2, costUsdNanos: 20n, startedAt: day2 }),
      usageRecord(tenant, { keyId: "k-b", inputTokens: 4, costUsdNanos: 40n, startedAt: day2, status: "failed" }),
    ];
    await database.db.insertInto("generations").values(records.map(toGenerationRow)).execute();
  });

  it("breaks usage down by key and by UTC day, each adding up to the totals", async () => {
    const report = await new UsageQuery(database.db).usage(tenant, new Date("2026-03-01T00:00:00Z"), new Date("2026-03-03T00:00:00Z"));
    expect(report.byKey.map((k) => [k.keyId, k.totals.requests, k.totals.costUsdNanos])).toEqual([
      ["k-a", 2, 30n],
      ["k-b", 1, 40n],
    ]);
    expect(report.byDay.map((d) => [d.day, d.totals.inputTokens, d.totals.failed])).toEqual([
      ["2026-03-01", 1, 0],
      ["2026-03-02", 6, 1],
    ]);
    expect(report.totals.costUsdNanos).toBe(70n);
  });
});
