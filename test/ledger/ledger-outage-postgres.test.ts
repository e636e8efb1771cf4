/**
 * A real Postgres outage: the ledger writes to a server that is stopped (`pg_ctl stop -m fast`)
 * for the length of 500 recorded calls and then started again; every call leaves exactly one row.
 *
 * Stopping the shared test server would break the other test files running in parallel, so this
 * file starts a private cluster of its own (scripts/postgres.sh with PG_DIR and PGPORT) on a free
 * loopback port, and stops and removes it afterwards whatever happened. It runs where the other
 * Postgres tests run: with DATABASE_URL set (scripts/postgres.sh installed the server).
 */
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import type { UsageRecord } from "../../src/core/types.js";
import { openDatabase, type Database } from "../../src/ledger/database.js";
import { UsageLedger } from "../../src/ledger/usage-ledger.js";
import { describeWithPostgres } from "../helpers/postgres.js";
import { usageRecord as sharedUsageRecord } from "../helpers/usage-record.js";

const run = promisify(execFile);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done, fail) => {
    server.once("error", fail);
    server.listen(0, "127.0.0.1", done);
  });
  const address = server.address();
  await new Promise<void>((done) => server.close(() => done()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

/** A Postgres cluster of this file's own, driven by the project's scripts. */
class PrivateCluster {
  #dir = "";
  #env: NodeJS.ProcessEnv = {};
  url = "";

  async create(): Promise<void> {
    // The server runs as the postgres user when we are root: it must be able to enter the directory.
    this.#dir = await mkdtemp(join(tmpdir(), "llm-pg-outage-"));
    await chmod(this.#dir, 0o755);
    this.#env = { ...process.env, PG_DIR: join(this.#dir, "pg"), PGPORT: String(await freePort()) };
    await this.start();
  }

  async start(): Promise<void> {
    const { stdout } = await run("bash", [join(ROOT, "scripts/postgres.sh")], { env: this.#env, timeout: 45_000 });
    const last = stdout.trim().split("\n").pop() ?? "";
    if (!last.startsWith("DATABASE_URL=")) throw new Error(`scripts/postgres.sh printed no DATABASE_URL: ${stdout}`);
    this.url = last.slice("DATABASE_URL=".length);
  }

  /** `pg_ctl stop -m fast`: connections are terminated, new ones refused. */
  async stop(): Promise<void> {
    await run("bash", [join(ROOT, "scripts/postgres-stop.sh")], { env: this.#env, timeout: 45_000 });
  }

  async remove(): Promise<void> {
    if (this.#dir === "") return;
    await run("bash", [join(ROOT, "scripts/postgres-stop.sh"), "--purge"], { env: this.#env, timeout: 45_000 }).catch(
      () => undefined,
    );
    await rm(this.#dir, { recursive: true, force: true });
  }
}

/** A record started now (the shared fixture's start is a fixed date), without metadata. */
function usageRecord(tenant: string): UsageRecord {
  const startedAt = new Date();
  return sharedUsageRecord(tenant, { startedAt, finishedAt: new Date(startedAt.getTime() + 15), metadata: {} });
}

describeWithPostgres("UsageLedger through a real Postgres outage", () => {
  const cluster = new PrivateCluster();
  let database: Database | undefined;
  let spoolRoot = "";

  beforeAll(async () => {
    await cluster.create();
    database = await openDatabase({ databaseUrl: cluster.url, dataDir: "(unused with Postgres)" }, { onPoolError: () => undefined });
    spoolRoot = await mkdtemp(join(tmpdir(), "llm-outage-spool-"));
  }, 60_000);

  afterAll(async () => {
    await database?.close().catch(() => undefined);
    await cluster.remove();
    if (spoolRoot !== "") await rm(spoolRoot, { recursive: true, force: true });
  }, 60_000);

  it(
    "writes exactly one row per call when Postgres is stopped for 500 calls and started again",
    async () => {
      const db = database!.db;
      const tenant = `outage-${randomUUID()}`;
      const failures: Error[] = [];
      let nextFailure: (() => void) | undefined;
      const ledger = new UsageLedger({
        db,
        spoolDir: join(spoolRoot, "spool"),
        flushIntervalMs: 10,
        batchSize: 50,
        retryBaseMs: 20,
        retryMaxMs: 200,
        spillAfter: 100,
        closeTimeoutMs: 2_000,
        onError: (err) => {
          failures.push(err);
          nextFailure?.();
        },
      });
      const failed = () => new Promise<void>((done) => (nextFailure = done));

      try {
        await ledger.start();
        // Connected and writing before the outage, so the pool holds connections that will break.
        const warmup = usageRecord(`${tenant}-warmup`);
        ledger.record(warmup);
        await ledger.flush();

        await cluster.stop();
        const calls: UsageRecord[] = [];
        for (let round = 0; round < 10; round++) {
          const next = failed();
          for (let i = 0; i < 50; i++) {
            const r = usageRecord(tenant);
            calls.push(r);
            ledger.record(r);
          }
          // The ledger tries, fails against the stopped server, and carries on with the next calls.
          await next;
        }
        expect(failures.length).toBeGreaterThanOrEqual(10);
        await vi.waitFor(() => expect(ledger.pending + ledger.spooled).toBe(500), { timeout: 10_000 });
        expect(ledger.pending).toBeLessThanOrEqual(100);
        expect(ledger.spooled).toBeGreaterThanOrEqual(400);
        await expect(db.selectFrom("generations").select("id").execute()).rejects.toThrow();

        await cluster.start();
        await vi.waitFor(() => expect(ledger.pending + ledger.spooled).toBe(0), { timeout: 20_000, interval: 50 });
      } finally {
        await ledger.close();
      }

      const rows = await db.selectFrom("generations").select("request_id").where("tenant", "=", tenant).execute();
      expect(rows).toHaveLength(500);
      expect(new Set(rows.map((r) => r.request_id)).size).toBe(500);
      expect(ledger.dropped).toBe(0);
    },
    60_000,
  );
});
