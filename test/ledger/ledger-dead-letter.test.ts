/**
 * A record the database refuses for its content (here a NUL character, which Postgres text and
 * jsonb cannot hold) is never dropped silently: the good rows of its batch are written, the bad
 * one goes to the dead-letter file beside the spool with the SQLSTATE and the database's message,
 * and llm_ledger_dead_letters_total counts it. Through the ledger's own API, on PGlite and Postgres.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, expect, it } from "vitest";
import { UsageLedger } from "../../src/ledger/usage-ledger.js";
import { UsageRecordDeadLetteredError } from "../../src/ledger/usage-ledger-errors.js";
import { UsageSpool } from "../../src/ledger/usage-spool.js";
import { GatewayMetrics } from "../../src/telemetry/metrics.js";
import { describeEachDatabase } from "../helpers/postgres.js";
import { usageRecord } from "../helpers/usage-record.js";

interface DeadLetterLine {
  at: string;
  sqlstate: string | null;
  message: string;
  record: { requestId: string; tenant: string; metadata: Record<string, string>; model: string };
}

async function deadLetters(spoolDir: string): Promise<DeadLetterLine[]> {
  const text = await readFile(join(spoolDir, "dead-letter.jsonl"), "utf8").catch(() => "");
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as DeadLetterLine);
}

describeEachDatabase("UsageLedger with rows the database refuses", (database) => {
  const dirs: string[] = [];
  afterEach(async () => {
    await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
  });
  const spoolDir = async () => {
    const dir = await mkdtemp(join(tmpdir(), "llm-dead-letter-"));
    dirs.push(dir);
    return join(dir, "spool");
  };
  const stored = async (tenant: string) =>
    (await database.db.selectFrom("generations").select("request_id").where("tenant", "=", tenant).execute()).map((r) => r.request_id).sort();

  it("writes the good rows of a batch, dead-letters each refused one with its SQLSTATE, and counts them", async () => {
    const tenant = `dead-${randomUUID()}`;
    const dir = await spoolDir();
    const errors: Error[] = [];
    const ledger = new UsageLedger({ db: database.db, spoolDir: dir, onError: (err) => errors.push(err) });
    const metrics = new GatewayMetrics({ processMetrics: false });
    metrics.observeLedger(ledger);
    await ledger.start();
    const good = [usageRecord(tenant), usageRecord(tenant), usageRecord(tenant)];
    // A NUL in jsonb (metadata) and in a text column (model): Postgres refuses both.
    const badMetadata = usageRecord(tenant, { metadata: { note: "a\u0000b" } });
    const badText = usageRecord(tenant, { model: "sim\u0000small" });
    for (const r of [good[0]!, badMetadata, good[1]!, badText, good[2]!]) ledger.record(r);
    await ledger.flush();

    expect(await stored(tenant)).toEqual(good.map((r) => r.requestId).sort());
    const lines = await deadLetters(dir);
    expect(lines.map((l) => l.record.requestId)).toEqual([badMetadata.requestId, badText.requestId]);
    for (const line of lines) {
      // A data exception (class 22), with the database's message; the record kept whole.
      expect(line.sqlstate).toMatch(/^22[0-9A-Z]{3}$/);
      expect(line.message.length).toBeGreaterThan(0);
      expect(line.record.tenant).toBe(tenant);
    }
    expect(lines[0]!.record.metadata).toEqual({ note: "a\u0000b" });
    expect(lines[1]!.record.model).toBe("sim\u0000small");

    expect(ledger.deadLettered).toBe(2);
    expect(ledger.dropped).toBe(0);
    expect(ledger.journaled).toBe(0);
    expect((await metrics.scrape()).body).toMatch(/^llm_ledger_dead_letters_total 2$/m);
    expect(errors.filter((e) => e instanceof UsageRecordDeadLetteredError).map((e) => (e as UsageRecordDeadLetteredError).requestId)).toEqual([
      badMetadata.requestId,
      badText.requestId,
    ]);
    await ledger.close();
    // Closed cleanly with everything written: no journal left to replay.
    expect((await readdir(dir)).filter((n) => n.startsWith("journal-"))).toEqual([]);
  });

  it("keeps a refused record in the journal when the dead-letter file cannot be written, and dead-letters it on the next start", async () => {
    const tenant = `dead-${randomUUID()}`;
    const dir = await spoolDir();
    const good = usageRecord(tenant);
    const bad = usageRecord(tenant, { metadata: { note: "\u0000" } });
    const first = new UsageLedger({ db: database.db, spoolDir: dir, deadLetterPath: join(dir, "no-such-dir", "dead-letter.jsonl") });
    await first.start();
    first.record(good);
    first.record(bad);
    await first.flush();
    expect(first.deadLettered).toBe(0);
    expect(first.dropped).toBe(0);
    expect(first.journaled).toBe(1);
    await first.close();
    expect((await readdir(dir)).filter((n) => n.startsWith("journal-"))).toHaveLength(1);

    const second = new UsageLedger({ db: database.db, spoolDir: dir });
    // The segment holds the good record's line too (written already: replayed idempotently).
    expect(await second.start()).toEqual({ spooled: 2 });
    await second.flush();
    await second.close();
    expect(second.deadLettered).toBe(1);
    expect(await stored(tenant)).toEqual([good.requestId]);
    expect((await deadLetters(dir)).map((l) => l.record.requestId)).toEqual([bad.requestId]);
    expect((await readdir(dir)).filter((n) => n.endsWith(".jsonl"))).toEqual(["dead-letter.jsonl"]);
  });

  it("dead-letters a refused record replayed from the spool, and writes the rest of the segment", async () => {
    const tenant = `dead-${randomUUID()}`;
    const dir = await spoolDir();
    const good = [usageRecord(tenant), usageRecord(tenant)];
    const bad = usageRecord(tenant, { metadata: { note: "\u0000" } });
    // Left by an earlier process.
    const spool = await UsageSpool.open({ dir });
    await spool.append([good[0]!, bad, good[1]!]);
    await spool.close();

    const ledger = new UsageLedger({ db: database.db, spoolDir: dir });
    await ledger.start();
    await ledger.flush();
    await ledger.close();
    expect(await stored(tenant)).toEqual(good.map((r) => r.requestId).sort());
    expect((await deadLetters(dir)).map((l) => l.record.requestId)).toEqual([bad.requestId]);
    expect(ledger.deadLettered).toBe(1);
  });
});
