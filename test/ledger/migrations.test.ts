import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import { afterAll, describe, expect, it } from "vitest";
import { openDatabase } from "../../src/ledger/database.js";
import { toGenerationRow } from "../../src/ledger/generation-row.js";
import { createMigrator, MIGRATIONS, migrateToLatest } from "../../src/ledger/migrations.js";
import type { UsageRecord } from "../../src/core/types.js";
import { DATABASE_HOOK_TIMEOUT_MS, describeEachDatabase } from "../helpers/postgres.js";
import { seededDataDir } from "../helpers/pglite-template.js";

function usageRecord(requestId: string): UsageRecord {
  const startedAt = new Date("2026-01-01T00:00:00Z");
  return {
    id: randomUUID(),
    requestId,
    keyId: "key-1",
    tenant: "t-migrations",
    model: "sim-small",
    provider: "sim",
    status: "ok",
    errorReason: null,
    inputTokens: 1,
    outputTokens: 2,
    cachedInputTokens: 0,
    cacheWriteInputTokens: 0,
    reasoningTokens: 0,
    costUsdNanos: 3n,
    cached: false,
    attempts: [],
    latencyMs: 4,
    timeToFirstTokenMs: null,
    startedAt,
    finishedAt: startedAt,
    metadata: {},
  };
}

describeEachDatabase("migrations", (database) => {
  async function columns(table: string): Promise<Record<string, string>> {
    const result = await sql<{ column_name: string; data_type: string }>`
      select column_name, data_type from information_schema.columns
      where table_schema = current_schema() and table_name = ${table}`.execute(database.db);
    return Object.fromEntries(result.rows.map((r) => [r.column_name, r.data_type]));
  }

  it("creates the generations table with its column types", async () => {
    expect(await columns("generations")).toEqual({
      id: "uuid",
      request_id: "text",
      client_request_id: "text",
      key_id: "text",
      tenant: "text",
      model: "text",
      provider: "text",
      status: "text",
      error_reason: "text",
      input_tokens: "integer",
      output_tokens: "integer",
      cached_input_tokens: "integer",
      cache_write_input_tokens: "integer",
      reasoning_tokens: "integer",
      cost_usd_nanos: "bigint",
      cached: "boolean",
      attempts: "jsonb",
      latency_ms: "integer",
      time_to_first_token_ms: "integer",
      started_at: "timestamp with time zone",
      finished_at: "timestamp with time zone",
      metadata: "jsonb",
    });
  });

  it("creates the api_keys table with its column types", async () => {
    expect(await columns("api_keys")).toEqual({
      id: "text",
      prefix: "text",
      salt: "text",
      hash: "text",
      name: "text",
      tenant: "text",
      role: "text",
      created_at: "timestamp with time zone",
      expires_at: "timestamp with time zone",
      revoked_at: "timestamp with time zone",
      allowed_models: "jsonb",
      limits: "jsonb",
      disabled_at: "timestamp with time zone",
    });
  });

  it("creates the tenants table with its column types, keyed by name", async () => {
    expect(await columns("tenants")).toEqual({
      name: "text",
      limits: "jsonb",
      created_at: "timestamp with time zone",
      updated_at: "timestamp with time zone",
    });
    await database.db.insertInto("tenants").values({ name: "t-pk" }).execute();
    await expect(database.db.insertInto("tenants").values({ name: "t-pk" }).execute()).rejects.toMatchObject({
      code: "23505",
    });
  });

  it("defaults a new tenant's limits to {} and its times to now", async () => {
    const row = await database.db
      .insertInto("tenants")
      .values({ name: "t-defaults" })
      .returning(["limits", "created_at", "updated_at"])
      .executeTakeFirstOrThrow();
    expect(row.limits).toEqual({});
    expect(Math.abs(row.created_at.getTime() - Date.now())).toBeLessThan(60_000);
    expect(row.updated_at).toEqual(row.created_at);
  });

  it("refuses limits that are not a JSON object and allowed models that are not a JSON array", async () => {
    await expect(
      database.db.insertInto("tenants").values({ name: "t-bad", limits: "[]" }).execute(),
    ).rejects.toMatchObject({ code: "23514" });
    const key = { id: randomUUID(), prefix: randomUUID().slice(0, 10), salt: "s", hash: "h", name: "n", tenant: "t", role: "user" as const };
    await expect(
      database.db.insertInto("api_keys").values({ ...key, allowed_models: '"sim/*"' }).execute(),
    ).rejects.toMatchObject({ code: "23514" });
    await expect(
      database.db.insertInto("api_keys").values({ ...key, limits: "5" }).execute(),
    ).rejects.toMatchObject({ code: "23514" });
  });

  it("gives keys made before 0003_key_limits every model, no limits and the enabled state; and migrates down and up again", async () => {
    const migrator = createMigrator(database.db);
    const down = await migrator.migrateTo("0002_api_keys");
    expect(down.error).toBeUndefined();
    expect(await columns("tenants")).toEqual({});
    expect(Object.keys(await columns("api_keys"))).not.toContain("limits");

    const id = randomUUID();
    await sql`insert into api_keys (id, prefix, salt, hash, name, tenant, role)
              values (${id}, ${id.slice(0, 10)}, 's', 'h', 'old key', 'old-tenant', 'user')`.execute(database.db);

    expect(await migrateToLatest(database.db)).toEqual(Object.keys(MIGRATIONS).filter((name) => name > "0002_api_keys"));
    const row = await database.db
      .selectFrom("api_keys")
      .select(["allowed_models", "limits", "disabled_at", "name"])
      .where("id", "=", id)
      .executeTakeFirstOrThrow();
    expect(row).toEqual({ allowed_models: [], limits: {}, disabled_at: null, name: "old key" });
  });

  it("0004 gives an existing ledger a client_request_id column: old rows keep their request_id, and new rows may share a client id", async () => {
    const migrator = createMigrator(database.db);
    const down = await migrator.migrateTo("0003_key_limits");
    expect(down.error).toBeUndefined();
    expect(Object.keys(await columns("generations"))).not.toContain("client_request_id");

    // A row as the service wrote it before 0004: the caller's x-request-id was the unique request_id.
    const oldId = randomUUID();
    await sql`insert into generations (id, request_id, key_id, tenant, model, provider, status, latency_ms, started_at, finished_at)
              values (${oldId}, 'caller-chose-this', 'key-1', 't-0004', 'sim-small', 'sim', 'ok', 1, now(), now())`.execute(database.db);

    expect(await migrateToLatest(database.db)).toEqual(Object.keys(MIGRATIONS).filter((name) => name > "0003_key_limits"));
    const old = await database.db
      .selectFrom("generations")
      .select(["request_id", "client_request_id"])
      .where("id", "=", oldId)
      .executeTakeFirstOrThrow();
    expect(old).toEqual({ request_id: "caller-chose-this", client_request_id: null });

    // Two calls with the same caller id: two rows, each under its own server request id.
    const shared = "caller-reused-this";
    const rows = [randomUUID(), randomUUID()].map((requestId) => toGenerationRow({ ...usageRecord(requestId), clientRequestId: shared }));
    await database.db.insertInto("generations").values(rows).execute();
    const found = await database.db
      .selectFrom("generations")
      .select("request_id")
      .where("client_request_id", "=", shared)
      .orderBy("request_id")
      .execute();
    expect(found.map((r) => r.request_id)).toEqual(rows.map((r) => r.request_id).sort());
    const indexes = await sql<{ indexdef: string }>`
      select indexdef from pg_indexes where tablename = 'generations'`.execute(database.db);
    expect(indexes.rows.map((r) => r.indexdef)).toContainEqual(expect.stringMatching(/\(client_request_id\)/));
  });

  it("0005 gives an existing ledger the usage detail columns: old rows count none, new rows keep theirs", async () => {
    const migrator = createMigrator(database.db);
    const down = await migrator.migrateTo("0004_client_request_id");
    expect(down.error).toBeUndefined();
    expect(Object.keys(await columns("generations"))).not.toContain("cached_input_tokens");

    const oldId = randomUUID();
    await sql`insert into generations (id, request_id, key_id, tenant, model, provider, status, input_tokens, output_tokens, latency_ms, started_at, finished_at)
              values (${oldId}, ${randomUUID()}, 'key-1', 't-0005', 'sim-small', 'sim', 'ok', 9, 5, 1, now(), now())`.execute(database.db);

    expect(await migrateToLatest(database.db)).toEqual(Object.keys(MIGRATIONS).filter((name) => name > "0004_client_request_id"));
    const detail = ["input_tokens", "output_tokens", "cached_input_tokens", "cache_write_input_tokens", "reasoning_tokens"] as const;
    const old = await database.db.selectFrom("generations").select(detail).where("id", "=", oldId).executeTakeFirstOrThrow();
    expect(old).toEqual({ input_tokens: 9, output_tokens: 5, cached_input_tokens: 0, cache_write_input_tokens: 0, reasoning_tokens: 0 });

    const row = toGenerationRow({ ...usageRecord(randomUUID()), inputTokens: 900, outputTokens: 50, cachedInputTokens: 640, cacheWriteInputTokens: 200, reasoningTokens: 30 });
    await database.db.insertInto("generations").values(row).execute();
    const stored = await database.db.selectFrom("generations").select(detail).where("id", "=", row.id).executeTakeFirstOrThrow();
    expect(stored).toEqual({ input_tokens: 900, output_tokens: 50, cached_input_tokens: 640, cache_write_input_tokens: 200, reasoning_tokens: 30 });
  });

  it("indexes generations by (tenant, started_at)", async () => {
    const result = await sql<{ indexdef: string }>`
      select indexdef from pg_indexes where tablename = 'generations'`.execute(database.db);
    expect(result.rows.map((r) => r.indexdef)).toContainEqual(expect.stringMatching(/\(tenant, started_at\)/));
  });

  it("records every migration as applied and applies nothing on a second run", async () => {
    const applied = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(database.db);
    expect(applied.rows.map((r) => r.name)).toEqual(Object.keys(MIGRATIONS).sort());
    expect(await migrateToLatest(database.db)).toEqual([]);
  });

  it("refuses a second generations row with the same request id", async () => {
    const requestId = randomUUID();
    await database.db.insertInto("generations").values(toGenerationRow(usageRecord(requestId))).execute();
    await expect(
      database.db.insertInto("generations").values(toGenerationRow(usageRecord(requestId))).execute(),
    ).rejects.toMatchObject({ code: "23505" });
  });

  it("refuses a status outside ok, failed, cancelled", async () => {
    const row = { ...toGenerationRow(usageRecord(randomUUID())), status: "weird" as "ok" };
    await expect(database.db.insertInto("generations").values(row).execute()).rejects.toMatchObject({ code: "23514" });
  });

  it("returns bigint columns as exact decimal strings", async () => {
    const requestId = randomUUID();
    const big = 2n ** 62n + 1n;
    await database.db
      .insertInto("generations")
      .values(toGenerationRow({ ...usageRecord(requestId), costUsdNanos: big }))
      .execute();
    const row = await database.db
      .selectFrom("generations")
      .select("cost_usd_nanos")
      .where("request_id", "=", requestId)
      .executeTakeFirstOrThrow();
    expect(row.cost_usd_nanos).toBe(big.toString());
  });
});

describe("PGlite storage", () => {
  const dirs: string[] = [];
  afterAll(async () => {
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it(
    "keeps its data in dataDir across a restart and does not migrate twice",
    async () => {
      const dataDir = seededDataDir("llm-ledger-reopen-");
      dirs.push(dataDir);
      const requestId = randomUUID();

      const first = await openDatabase({ dataDir });
      expect(first.kind).toBe("pglite");
      await first.db.insertInto("generations").values(toGenerationRow(usageRecord(requestId))).execute();
      await first.close();

      const second = await openDatabase({ dataDir });
      try {
        const rows = await second.db.selectFrom("generations").select("request_id").execute();
        expect(rows).toEqual([{ request_id: requestId }]);
        expect(await migrateToLatest(second.db)).toEqual([]);
      } finally {
        await second.close();
      }
    },
    DATABASE_HOOK_TIMEOUT_MS * 2,
  );

  it(
    "creates a new cluster without keeping initdb's WASM memory in the opening process",
    async () => {
      const dataDir = await mkdtemp(join(tmpdir(), "llm-ledger-initdb-"));
      dirs.push(dataDir);
      // external counts every live ArrayBuffer, WASM memories included: the service's own PGlite
      // instance is 128 MB (its initial memory). An initdb run in this process would add the
      // temporary instance and initdb's memories (~400 MB), live until a full GC comes along.
      const before = process.memoryUsage().external;
      const database = await openDatabase({ dataDir });
      try {
        expect(await database.db.selectFrom("api_keys").select("id").execute()).toEqual([]);
        expect(process.memoryUsage().external - before).toBeLessThan(256 * 1024 * 1024);
      } finally {
        await database.close();
      }
    },
    DATABASE_HOOK_TIMEOUT_MS,
  );
});

describe("embedded database ownership", () => {
  it("refuses a second open of the same PGlite directory while the first is open, and allows it after close", async () => {
    const dataDir = seededDataDir("llm-lock-");
    try {
      const first = await openDatabase({ dataDir });
      await expect(openDatabase({ dataDir })).rejects.toThrow(/in use by process/);
      await first.close();
      const second = await openDatabase({ dataDir });
      await second.close();
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  }, 60_000);
});
