import { randomUUID } from "node:crypto";
import {
  type KyselyPlugin,
  type PluginTransformQueryArgs,
  type PluginTransformResultArgs,
  type QueryResult,
  type RootOperationNode,
  type UnknownRow,
} from "kysely";
import { afterEach, expect, it, vi } from "vitest";
import type { UsageRecord } from "../../src/core/types.js";
import { generationsInsertRows } from "../../src/ledger/generations-insert.js";
import { UsageLedger, type UsageLedgerOptions } from "../../src/ledger/usage-ledger.js";
import { UsageRecordsDroppedError } from "../../src/ledger/usage-ledger-errors.js";
import { describeEachDatabase } from "../helpers/postgres.js";
import { usageRecord } from "../helpers/usage-record.js";

/** Counts INSERT statements (and their row counts) and, when asked, fails them like a dead database would. */
class ProbePlugin implements KyselyPlugin {
  failing = false;
  readonly insertSizes: number[] = [];

  transformQuery({ node }: PluginTransformQueryArgs): RootOperationNode {
    if (node.kind === "InsertQueryNode") {
      if (this.failing) throw new Error("connect ECONNREFUSED 127.0.0.1:5432 (simulated)");
      // NaN for an INSERT whose rows cannot be counted, so every size check on it fails rather than passing on a 0.
      this.insertSizes.push(generationsInsertRows(node) ?? Number.NaN);
    }
    return node;
  }

  async transformResult({ result }: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return result;
  }
}

describeEachDatabase("UsageLedger", (database) => {
  const ledgers: UsageLedger[] = [];
  afterEach(async () => {
    // Leave no timers behind, whatever a test did.
    await Promise.all(ledgers.splice(0).map((l) => l.close().catch(() => undefined)));
  });

  function setup(options: Partial<UsageLedgerOptions> = {}) {
    const probe = new ProbePlugin();
    const errors: Error[] = [];
    const ledger = new UsageLedger({
      db: database.db.withPlugin(probe),
      flushIntervalMs: 60_000,
      retryBaseMs: 5,
      retryMaxMs: 20,
      onError: (err) => errors.push(err),
      ...options,
    });
    ledgers.push(ledger);
    return { ledger, probe, errors, tenant: `tenant-${randomUUID()}` };
  }

  async function rowCount(tenant: string): Promise<number> {
    const rows = await database.db.selectFrom("generations").select("request_id").where("tenant", "=", tenant).execute();
    return rows.length;
  }

  it("writes queued records in multi-row batches of at most batchSize", async () => {
    const { ledger, probe, tenant } = setup({ batchSize: 10 });
    for (let i = 0; i < 25; i++) ledger.record(usageRecord(tenant));
    await ledger.flush();

    expect(await rowCount(tenant)).toBe(25);
    expect(probe.insertSizes.reduce((a, b) => a + b, 0)).toBe(25);
    expect(probe.insertSizes.length).toBe(3);
    expect(Math.max(...probe.insertSizes)).toBeLessThanOrEqual(10);
  });

  it("starts a write as soon as batchSize records are queued, without waiting for the timer", async () => {
    const { ledger, tenant } = setup({ batchSize: 5 });
    for (let i = 0; i < 5; i++) ledger.record(usageRecord(tenant));
    await vi.waitFor(async () => expect(await rowCount(tenant)).toBe(5));
    expect(ledger.pending).toBe(0);
  });

  it("writes a partial batch when the flush interval passes", async () => {
    const { ledger, tenant } = setup({ flushIntervalMs: 20 });
    for (let i = 0; i < 3; i++) ledger.record(usageRecord(tenant));
    expect(ledger.pending).toBe(3);
    await vi.waitFor(async () => expect(await rowCount(tenant)).toBe(3));
  });

  it("record() returns before anything is written", async () => {
    const { ledger, probe, tenant } = setup();
    ledger.record(usageRecord(tenant));
    expect(ledger.pending).toBe(1);
    expect(probe.insertSizes).toEqual([]);
    await ledger.flush();
    expect(ledger.pending).toBe(0);
  });

  it("writes one row for a request id recorded twice, in one batch or in two", async () => {
    const { ledger, tenant } = setup();
    const first = usageRecord(tenant, { inputTokens: 1 });
    ledger.record(first);
    ledger.record({ ...first, id: randomUUID(), inputTokens: 2 });
    await ledger.flush();
    ledger.record({ ...first, inputTokens: 3 });
    ledger.record({ ...first, id: randomUUID(), inputTokens: 4 });
    await ledger.flush();

    const rows = await database.db
      .selectFrom("generations")
      .select(["id", "input_tokens"])
      .where("request_id", "=", first.requestId)
      .execute();
    expect(rows).toEqual([{ id: first.id, input_tokens: 1 }]);
  });

  it("stores every field of the record, with costs past 2^53 exact", async () => {
    const { ledger, tenant } = setup();
    const record = usageRecord(tenant, {
      cachedInputTokens: 6,
      cacheWriteInputTokens: 3,
      reasoningTokens: 12,
      status: "failed",
      errorReason: "PROVIDER_UNAVAILABLE",
      costUsdNanos: 2n ** 60n + 7n,
      cached: true,
      timeToFirstTokenMs: null,
      attempts: [
        { provider: "openai", deployment: "gpt-a", reason: "PROVIDER_UNAVAILABLE", latencyMs: 30 },
        { provider: "sim", deployment: "sim-b", reason: "OK", latencyMs: 9 },
      ],
      metadata: { a: "1", "b c": "ü" },
      clientRequestId: "caller-correlation-1",
    });
    ledger.record(record);
    await ledger.flush();

    const row = await database.db
      .selectFrom("generations")
      .selectAll()
      .where("request_id", "=", record.requestId)
      .executeTakeFirstOrThrow();
    expect(row).toEqual({
      id: record.id,
      request_id: record.requestId,
      client_request_id: "caller-correlation-1",
      key_id: record.keyId,
      tenant,
      model: record.model,
      provider: record.provider,
      status: "failed",
      error_reason: "PROVIDER_UNAVAILABLE",
      input_tokens: 10,
      output_tokens: 20,
      cached_input_tokens: 6,
      cache_write_input_tokens: 3,
      reasoning_tokens: 12,
      cost_usd_nanos: (2n ** 60n + 7n).toString(),
      cached: true,
      attempts: record.attempts,
      latency_ms: 15,
      time_to_first_token_ms: null,
      started_at: record.startedAt,
      finished_at: record.finishedAt,
      metadata: record.metadata,
    });
  });

  it("close() writes everything still queued, and later records are reported, not thrown", async () => {
    const { ledger, errors, tenant } = setup({ batchSize: 1000 });
    for (let i = 0; i < 7; i++) ledger.record(usageRecord(tenant));
    await ledger.close();
    expect(await rowCount(tenant)).toBe(7);
    expect(ledger.pending).toBe(0);

    expect(() => ledger.record(usageRecord(tenant))).not.toThrow();
    expect(errors).toEqual([expect.any(UsageRecordsDroppedError)]);
    expect(ledger.dropped).toBe(1);
  });

  it("concurrent flushes write each record once", async () => {
    const { ledger, probe, tenant } = setup({ batchSize: 100 });
    for (let i = 0; i < 10; i++) ledger.record(usageRecord(tenant));
    await Promise.all([ledger.flush(), ledger.flush(), ledger.flush()]);
    expect(probe.insertSizes).toEqual([10]);
    expect(await rowCount(tenant)).toBe(10);
  });

  it("keeps records while the database fails and writes them once it recovers", async () => {
    const { ledger, probe, errors, tenant } = setup({ flushIntervalMs: 5 });
    probe.failing = true;
    for (let i = 0; i < 5; i++) ledger.record(usageRecord(tenant));

    // The background writer fails, backs off and tries again; nothing is lost meanwhile.
    await vi.waitFor(() => expect(errors.length).toBeGreaterThanOrEqual(2));
    await expect(ledger.flush()).rejects.toThrow(/ECONNREFUSED/);
    expect(ledger.pending).toBe(5);
    expect(await rowCount(tenant)).toBe(0);

    probe.failing = false;
    // Counted once the INSERT has returned; pending drops to 0 as soon as a batch is taken, before it is written.
    await vi.waitFor(() => expect(ledger.written).toBe(5));
    expect(ledger.pending).toBe(0);
    expect(await rowCount(tenant)).toBe(5);
    expect(ledger.dropped).toBe(0);
  });

  it("keeps the order of records put back after a failed write", async () => {
    const { ledger, probe, tenant } = setup({ batchSize: 2 });
    probe.failing = true;
    const records = Array.from({ length: 5 }, () => usageRecord(tenant));
    for (const r of records) ledger.record(r);
    await expect(ledger.flush()).rejects.toThrow();
    probe.failing = false;
    await ledger.flush();
    expect(probe.insertSizes).toEqual([2, 2, 1]);
    expect(await rowCount(tenant)).toBe(5);
  });

  it("drops and reports new records once the queue is full", async () => {
    const { ledger, probe, errors, tenant } = setup({ maxQueue: 3 });
    probe.failing = true;
    for (let i = 0; i < 5; i++) ledger.record(usageRecord(tenant));
    expect(ledger.pending).toBe(3);
    expect(ledger.dropped).toBe(2);

    probe.failing = false;
    await ledger.flush();
    await vi.waitFor(() =>
      expect(errors.filter((e) => e instanceof UsageRecordsDroppedError).map((e) => (e as UsageRecordsDroppedError).dropped)).toEqual([2]),
    );
    expect(await rowCount(tenant)).toBe(3);
  });

  it("drops only a record the database rejects, and writes the rest of its batch", async () => {
    const { ledger, errors, tenant } = setup();
    const bad = usageRecord(tenant, { inputTokens: 2 ** 40 }); // beyond a Postgres integer
    ledger.record(usageRecord(tenant));
    ledger.record(bad);
    ledger.record(usageRecord(tenant));
    await ledger.flush();

    expect(await rowCount(tenant)).toBe(2);
    expect(ledger.pending).toBe(0);
    expect(ledger.dropped).toBe(1);
    expect(errors).toEqual([expect.any(UsageRecordsDroppedError)]);
    expect(errors[0]!.message).toContain(bad.requestId);
  });

  it("record() never throws, even for a malformed record", () => {
    const { ledger, errors } = setup();
    expect(() => ledger.record({} as UsageRecord)).not.toThrow();
    expect(ledger.pending).toBe(0);
    expect(errors).toEqual([expect.any(UsageRecordsDroppedError)]);
  });
});
