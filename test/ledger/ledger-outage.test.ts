/**
 * The ledger through a database outage, with a spool: records past the memory threshold go to
 * disk and all of them reach the database once it is back, each exactly once. The outage is a
 * Kysely plugin that fails INSERTs the way a dead connection would (the real thing, a stopped
 * Postgres server, is in ledger-outage-postgres.test.ts).
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
import { encodeSpooledRecord } from "../../src/ledger/spooled-record.js";
import { UsageSpool } from "../../src/ledger/usage-spool.js";
import { describeEachDatabase } from "../helpers/postgres.js";
import { usageRecord } from "../helpers/usage-record.js";

/** Counts INSERTed rows and, when asked, fails INSERTs before they run, or holds them after they ran. */
class OutagePlugin implements KyselyPlugin {
  failing = false;
  /** When set, an INSERT's result waits for this (the rows are committed, the caller does not know yet). */
  hold: Promise<void> | undefined;
  /** Called as an INSERT is sent. */
  onInsert: (() => void) | undefined;
  readonly insertSizes: number[] = [];
  #inserts = new Set<unknown>();

  transformQuery({ node, queryId }: PluginTransformQueryArgs): RootOperationNode {
    if (node.kind === "InsertQueryNode") {
      if (this.failing) throw new Error("connect ECONNREFUSED 127.0.0.1:5432 (simulated)");
      // NaN for an INSERT whose rows cannot be counted, so every size check on it fails rather than passing on a 0.
      this.insertSizes.push(generationsInsertRows(node) ?? Number.NaN);
      this.#inserts.add(queryId);
      this.onInsert?.();
    }
    return node;
  }

  async transformResult({ result, queryId }: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    if (this.#inserts.delete(queryId) && this.hold !== undefined) await this.hold;
    return result;
  }
}

/** A promise with its resolve function, to wait on an event. */
function signal<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describeEachDatabase("UsageLedger through a database outage", (database) => {
  const ledgers: UsageLedger[] = [];
  const dirs: string[] = [];
  afterEach(async () => {
    await Promise.all(ledgers.splice(0).map((l) => l.close().catch(() => undefined)));
    await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
  });

  async function spoolDir(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), "llm-ledger-outage-"));
    dirs.push(dir);
    return join(dir, "spool");
  }

  function setup(options: Partial<UsageLedgerOptions> & { probe?: OutagePlugin } = {}) {
    const probe = options.probe ?? new OutagePlugin();
    const errors: Error[] = [];
    const spills: number[] = [];
    const ledger = new UsageLedger({
      db: database.db.withPlugin(probe),
      flushIntervalMs: 5,
      batchSize: 10,
      retryBaseMs: 5,
      retryMaxMs: 20,
      spillAfterMs: 60_000,
      onError: (err) => errors.push(err),
      onSpill: (n) => spills.push(n),
      ...options,
    });
    ledgers.push(ledger);
    return { ledger, probe, errors, spills };
  }

  async function requestIds(tenant: string): Promise<string[]> {
    const rows = await database.db.selectFrom("generations").select("request_id").where("tenant", "=", tenant).execute();
    return rows.map((r) => r.request_id).sort();
  }

  const sorted = (rs: UsageRecord[]) => rs.map((r) => r.requestId).sort();

  it("moves the oldest records to the spool past spillAfter and writes every one once the database is back", async () => {
    const tenant = `tenant-${randomUUID()}`;
    const failed = signal();
    const { ledger, probe, spills } = setup({ spoolDir: await spoolDir(), spillAfter: 20, onError: () => failed.resolve() });
    probe.failing = true;
    const records = Array.from({ length: 100 }, () => usageRecord(tenant));
    // The first record starts a write that fails; the rest arrive while the ledger backs off.
    ledger.record(records[0]!);
    await failed.promise;
    for (const r of records.slice(1)) ledger.record(r);

    await vi.waitFor(() => expect(ledger.pending + ledger.spooled).toBe(100), { timeout: 5_000 });
    expect(ledger.pending).toBeLessThanOrEqual(20);
    expect(ledger.spooled).toBeGreaterThanOrEqual(80);
    expect(spills.reduce((a, b) => a + b, 0)).toBe(ledger.spooled);
    expect(await requestIds(tenant)).toEqual([]);

    probe.failing = false;
    await vi.waitFor(() => expect(ledger.pending + ledger.spooled).toBe(0), { timeout: 10_000 });
    expect(await requestIds(tenant)).toEqual(sorted(records));
    expect(Math.max(...probe.insertSizes)).toBeLessThanOrEqual(10);
    expect(ledger.dropped).toBe(0);
  });

  it("spools everything queued once the database has failed for longer than spillAfterMs", async () => {
    const tenant = `tenant-${randomUUID()}`;
    let now = 1_000_000;
    const spilled = signal<number>();
    const failed = signal();
    const { ledger, probe } = setup({
      spoolDir: await spoolDir(),
      spillAfterMs: 30_000,
      now: () => now,
      onSpill: (n) => spilled.resolve(n),
      onError: () => failed.resolve(),
    });
    probe.failing = true;
    for (let i = 0; i < 5; i++) ledger.record(usageRecord(tenant));
    await failed.promise;
    // Failing, but not for long, and far below spillAfter: the records stay in memory.
    ledger.record(usageRecord(tenant));
    expect(ledger.pending).toBe(6);
    expect(ledger.spooled).toBe(0);

    now += 30_000;
    ledger.record(usageRecord(tenant));
    expect(await spilled.promise).toBe(7);
    expect(ledger.pending).toBe(0);
    expect(ledger.spooled).toBe(7);

    probe.failing = false;
    await ledger.flush();
    expect(await requestIds(tenant)).toHaveLength(7);
    expect(ledger.spooled).toBe(0);
  });

  it("counts an INSERT that hangs for longer than spillAfterMs as failing, and spools what queues behind it", async () => {
    const tenant = `tenant-${randomUUID()}`;
    let now = 1_000_000;
    const release = signal();
    const spilled = signal<number>();
    const probe = new OutagePlugin();
    probe.hold = release.promise;
    const { ledger } = setup({ spoolDir: await spoolDir(), spillAfterMs: 10_000, now: () => now, probe, onSpill: (n) => spilled.resolve(n) });
    const inserting = signal();
    probe.onInsert = () => inserting.resolve();
    const first = Array.from({ length: 10 }, () => usageRecord(tenant));
    for (const r of first) ledger.record(r); // batchSize: this write starts at once, and hangs
    await inserting.promise;
    const behind = Array.from({ length: 4 }, () => usageRecord(tenant));
    for (const r of behind) ledger.record(r);
    expect(ledger.pending).toBe(4);

    now += 10_000;
    ledger.record(behind[0]!); // the same request id again: still one row in the end
    expect(await spilled.promise).toBe(5);
    expect(ledger.pending).toBe(0);

    release.resolve();
    probe.hold = undefined;
    await ledger.flush();
    expect(ledger.spooled).toBe(0);
    expect(await requestIds(tenant)).toEqual(sorted([...first, ...behind]));
  });

  it("close() right after an unawaited start() releases the spool", async () => {
    const dir = await spoolDir();
    const { ledger } = setup({ spoolDir: dir });
    const started = ledger.start();
    await ledger.close();
    await started;
    const again = await UsageSpool.open({ dir });
    await again.close();
  });

  it("without a spool directory keeps records in memory only, as before", async () => {
    const tenant = `tenant-${randomUUID()}`;
    const failed = signal();
    const { ledger, probe } = setup({ spillAfter: 0, spillAfterMs: 0, onError: () => failed.resolve() });
    probe.failing = true;
    for (let i = 0; i < 30; i++) ledger.record(usageRecord(tenant));
    await failed.promise;
    expect(ledger.pending).toBe(30);
    expect(ledger.spooled).toBe(0);
    probe.failing = false;
    await ledger.flush();
    expect(await requestIds(tenant)).toHaveLength(30);
  });

  it("close() spools what the database did not take, and the next start() writes it, once", async () => {
    const tenant = `tenant-${randomUUID()}`;
    const dir = await spoolDir();
    const first = setup({ spoolDir: dir, closeTimeoutMs: 2_000 });
    const records = Array.from({ length: 25 }, () => usageRecord(tenant));
    for (const r of records.slice(0, 5)) first.ledger.record(r);
    await first.ledger.flush();
    first.probe.failing = true;
    for (const r of records.slice(5)) first.ledger.record(r);

    await first.ledger.close();
    expect(first.ledger.pending).toBe(0);
    expect(first.ledger.dropped).toBe(0);
    expect(first.spills).toEqual([20]);
    expect(await requestIds(tenant)).toHaveLength(5);

    const second = setup({ spoolDir: dir });
    expect(second.ledger.spooled).toBe(0);
    await second.ledger.start();
    expect(second.ledger.spooled).toBe(20);
    await vi.waitFor(() => expect(second.ledger.spooled).toBe(0), { timeout: 10_000 });
    expect(await requestIds(tenant)).toEqual(sorted(records));
    expect((await readdir(dir)).filter((f) => f.endsWith(".jsonl"))).toEqual([]);
  });

  it("close() returns within closeTimeoutMs when a write hangs, spooling the hung batch too", async () => {
    const tenant = `tenant-${randomUUID()}`;
    const dir = await spoolDir();
    const release = signal();
    const probe = new OutagePlugin();
    const first = setup({ spoolDir: dir, closeTimeoutMs: 200, batchSize: 100, probe });
    const records = Array.from({ length: 12 }, () => usageRecord(tenant));
    for (const r of records) first.ledger.record(r);
    // The INSERT commits, then its answer never comes (a connection that died after COMMIT).
    probe.hold = release.promise;

    const started = performance.now();
    await first.ledger.close();
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(first.spills).toEqual([12]);
    release.resolve();

    probe.hold = undefined;
    const second = setup({ spoolDir: dir, probe });
    await second.ledger.start();
    await second.ledger.flush();
    expect(second.ledger.spooled).toBe(0);
    // Spooled and committed: the replay writes each request id once.
    expect(await requestIds(tenant)).toEqual(sorted(records));
  });

  it("replays a previous process's spool on start in bounded batches while new records keep flowing", async () => {
    const tenant = `tenant-${randomUUID()}`;
    const dir = await spoolDir();
    const left = Array.from({ length: 95 }, () => usageRecord(tenant));
    const earlier = await UsageSpool.open({ dir });
    await earlier.append(left);
    await earlier.close();

    const { ledger, probe } = setup({ spoolDir: dir, batchSize: 10 });
    await ledger.start();
    const fresh = Array.from({ length: 15 }, () => usageRecord(tenant));
    for (const r of fresh) ledger.record(r);
    await ledger.flush();

    expect(await requestIds(tenant)).toEqual(sorted([...left, ...fresh]));
    expect(ledger.spooled).toBe(0);
    expect(Math.max(...probe.insertSizes)).toBeLessThanOrEqual(10);
  });

  it("flush() replays the spool too, and rejects while the database is down without losing it", async () => {
    const tenant = `tenant-${randomUUID()}`;
    const dir = await spoolDir();
    const left = Array.from({ length: 7 }, () => usageRecord(tenant));
    const earlier = await UsageSpool.open({ dir });
    await earlier.append(left);
    await earlier.close();

    const { ledger, probe } = setup({ spoolDir: dir });
    probe.failing = true;
    await expect(ledger.flush()).rejects.toThrow(/ECONNREFUSED/);
    expect(ledger.spooled).toBe(7);
    probe.failing = false;
    await ledger.flush();
    expect(await requestIds(tenant)).toEqual(sorted(left));
  });

  it("reports records the full spool drops as UsageRecordsDroppedError, and writes the rest", async () => {
    const tenant = `tenant-${randomUUID()}`;
    const dir = await spoolDir();
    const lineBytes = Buffer.byteLength(`${encodeSpooledRecord(usageRecord(tenant))}\n`);
    const first = setup({ spoolDir: dir, spoolMaxBytes: lineBytes * 10 + 10, closeTimeoutMs: 100 });
    first.probe.failing = true;
    for (let i = 0; i < 25; i++) first.ledger.record(usageRecord(tenant));
    await first.ledger.close();

    const drops = first.errors.filter((e): e is UsageRecordsDroppedError => e instanceof UsageRecordsDroppedError);
    expect(drops.map((e) => e.dropped)).toEqual([15]);
    expect(drops[0]!.message).toMatch(/spool is full/);
    expect(first.ledger.dropped).toBe(15);
    expect(first.spills).toEqual([10]);

    const second = setup({ spoolDir: dir });
    await second.ledger.start();
    await second.ledger.flush();
    expect(await requestIds(tenant)).toHaveLength(10);
  });

  it("keeps records in memory when the spool cannot be opened, and says so", async () => {
    const tenant = `tenant-${randomUUID()}`;
    const dir = await spoolDir();
    const holder = await UsageSpool.open({ dir }); // another instance holds the lock
    try {
      const spoolFailed = signal<Error>();
      const { ledger, probe } = setup({
        spoolDir: dir,
        spillAfter: 0,
        spillAfterMs: 0,
        onError: (err) => {
          if (/spool/.test(err.message)) spoolFailed.resolve(err);
        },
      });
      probe.failing = true;
      for (let i = 0; i < 5; i++) ledger.record(usageRecord(tenant));
      expect((await spoolFailed.promise).message).toMatch(/records kept in memory/);
      expect(ledger.pending).toBe(5);
      expect(ledger.dropped).toBe(0);

      probe.failing = false;
      await expect(ledger.flush()).rejects.toThrow(/already open/);
      expect(await requestIds(tenant)).toHaveLength(5);
    } finally {
      await holder.close();
    }
  });
});
