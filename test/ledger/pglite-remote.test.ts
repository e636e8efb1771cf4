/**
 * ledger/pglite-remote.ts and pglite-worker.ts: the embedded database in a worker thread, as
 * Kysely and the ledger use it (queries, errors with their SQLSTATE, transactions), and what
 * callers get when the thread dies.
 */
import { rm } from "node:fs/promises";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase, type Database } from "../../src/ledger/database.js";
import { EmbeddedDatabaseError, RemotePglite } from "../../src/ledger/pglite-remote.js";
import { DATABASE_HOOK_TIMEOUT_MS } from "../helpers/postgres.js";
import { seededDataDir } from "../helpers/pglite-template.js";

describe("the embedded database in a worker thread", () => {
  let dir: string;
  let database: Database;

  beforeAll(async () => {
    dir = seededDataDir("llm-pglite-remote-");
    database = await openDatabase({ dataDir: dir, pgliteWorker: true });
    await database.db.schema.createTable("t").addColumn("k", "text", (c) => c.primaryKey()).addColumn("n", "int8").execute();
  }, DATABASE_HOOK_TIMEOUT_MS);

  afterAll(async () => {
    await database?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("answers queries with the same values PGlite gives (int8 as a decimal string)", async () => {
    await database.db.insertInto("t" as never).values({ k: "a", n: "9007199254740993" } as never).execute();
    const rows = await database.db.selectFrom("t" as never).selectAll().execute();
    expect(rows).toEqual([{ k: "a", n: "9007199254740993" }]);
  });

  it("runs queries off the event loop: timers keep firing while a long query runs", async () => {
    const { took, maxGap } = await longestEventLoopGap(database);
    expect(took).toBeGreaterThan(100);
    expect(maxGap).toBeLessThan(took / 2);
  });

  it("rejects a bad row with the Postgres error's SQLSTATE and constraint, not the query", async () => {
    const err: unknown = await database.db
      .insertInto("t" as never)
      .values({ k: "a", n: "1" } as never)
      .execute()
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(EmbeddedDatabaseError);
    expect((err as EmbeddedDatabaseError).code).toBe("23505");
    expect((err as { constraint?: string }).constraint).toBe("t_pkey");
    expect(JSON.stringify(err)).not.toContain("insert into");
  });

  it("commits a transaction that succeeds and rolls back one that throws", async () => {
    await database.db.transaction().execute(async (trx) => {
      await trx.insertInto("t" as never).values({ k: "committed", n: "1" } as never).execute();
    });
    await expect(
      database.db.transaction().execute(async (trx) => {
        await trx.insertInto("t" as never).values({ k: "rolled-back", n: "1" } as never).execute();
        throw new Error("changed my mind");
      }),
    ).rejects.toThrow("changed my mind");
    const keys = (await database.db.selectFrom("t" as never).select("k" as never).execute()).map((r) => (r as { k: string }).k);
    expect(keys).toContain("committed");
    expect(keys).not.toContain("rolled-back");
  });
});

describe("the embedded database on the event loop (the default)", () => {
  it("holds the event loop for as long as a query runs (the control for the test above)", async () => {
    const dir = seededDataDir("llm-pglite-inline-");
    const database = await openDatabase({ dataDir: dir });
    try {
      const { took, maxGap } = await longestEventLoopGap(database);
      expect(took).toBeGreaterThan(100);
      expect(maxGap).toBeGreaterThan(took / 2);
    } finally {
      await database.close();
      await rm(dir, { recursive: true, force: true });
    }
  }, DATABASE_HOOK_TIMEOUT_MS);
});

describe("when the database does not open in the thread", () => {
  it("fails the start with the thread's error, ends the thread, and fails every later call with the same error", async () => {
    const remote = new RemotePglite(new URL("../fixtures/pglite-fail-worker.ts", import.meta.url), { dataDir: "(unused)", settings: [], v8Flags: [] });
    const err: unknown = await remote.waitReady.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(EmbeddedDatabaseError);
    expect((err as EmbeddedDatabaseError).code).toBe("58P01");
    await expect(remote.query("select 1")).rejects.toBe(err);
    await remote.close();
  });
});

describe("when the database thread dies", () => {
  it("fails the waiting call and every later one with an error that says so", async () => {
    const remote = new RemotePglite(new URL("../fixtures/pglite-exit-worker.ts", import.meta.url), { dataDir: "(unused)", settings: [], v8Flags: [] });
    await remote.waitReady;
    await expect(remote.query("select 1")).rejects.toThrow(/embedded database worker exited \(code 3\)/);
    await expect(remote.query("select 1")).rejects.toThrow(/embedded database worker exited \(code 3\)/);
    await remote.close();
    expect(remote.closed).toBe(true);
  });
});

/** Runs a query that takes PGlite well over 100 ms and reports the longest wait between 2 ms timer ticks meanwhile. */
async function longestEventLoopGap(database: Database): Promise<{ took: number; maxGap: number }> {
  const ticks: number[] = [];
  const timer = setInterval(() => ticks.push(performance.now()), 2);
  const started = performance.now();
  ticks.push(started);
  await sql`select count(*) from generate_series(1, 2000000)`.execute(database.db);
  const ended = performance.now();
  clearInterval(timer);
  ticks.push(ended);
  let maxGap = 0;
  for (let i = 1; i < ticks.length; i++) maxGap = Math.max(maxGap, ticks[i]! - ticks[i - 1]!);
  return { took: ended - started, maxGap };
}
