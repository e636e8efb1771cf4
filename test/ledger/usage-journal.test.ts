/**
 * The usage journal on its own: a record is on disk when append() returns, a segment is cleared
 * once its records are released, and what is left after close() is taken in by the spool and
 * replayed, in order.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { UsageRecord } from "../../src/core/types.js";
import { decodeSpooledRecord } from "../../src/ledger/spooled-record.js";
import { UsageJournal, journalName } from "../../src/ledger/usage-journal.js";
import { UsageSpool } from "../../src/ledger/usage-spool.js";
import { usageRecord } from "../helpers/usage-record.js";

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "llm-journal-"));
  dirs.push(dir);
  return dir;
}

async function journalIds(dir: string, name: string): Promise<string[]> {
  const text = await readFile(join(dir, name), "utf8");
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => decodeSpooledRecord(l).requestId);
}

describe("UsageJournal", () => {
  it("has the record in the file when append() returns, and empties the file once it is released", async () => {
    const dir = await tempDir();
    const journal = new UsageJournal({ dir });
    const a = usageRecord("t");
    const b = usageRecord("t");
    const segA = journal.append(a);
    const segB = journal.append(b);
    expect(segA).toBe(1);
    expect(segB).toBe(1);
    expect(await journalIds(dir, journalName(1))).toEqual([a.requestId, b.requestId]);
    expect(journal.outstanding).toBe(2);
    journal.release(segA);
    expect(await journalIds(dir, journalName(1))).toEqual([a.requestId, b.requestId]);
    journal.release(segB);
    expect(await readFile(join(dir, journalName(1)), "utf8")).toBe("");
    // Appends after the truncation start the file over.
    const c = usageRecord("t");
    journal.release(journal.append(c));
    journal.close();
    expect(await readdir(dir)).toEqual([]);
  });

  it("starts a new segment past segmentBytes and deletes an old one once all its records are released", async () => {
    const dir = await tempDir();
    const journal = new UsageJournal({ dir, segmentBytes: 1 });
    const segments = [usageRecord("t"), usageRecord("t"), usageRecord("t")].map((r) => journal.append(r));
    expect(segments).toEqual([1, 2, 3]);
    expect((await readdir(dir)).sort()).toEqual([journalName(1), journalName(2), journalName(3)]);
    journal.release(2);
    expect((await readdir(dir)).sort()).toEqual([journalName(1), journalName(3)]);
    journal.close();
    // Unreleased records stay for the next start.
    expect((await readdir(dir)).sort()).toEqual([journalName(1), journalName(3)]);
  });

  it("leaves unreleased records that the spool adopts and replays in order, numbering a new journal past them", async () => {
    const dir = await tempDir();
    const first = new UsageJournal({ dir, segmentBytes: 600 });
    const records: UsageRecord[] = Array.from({ length: 6 }, () => usageRecord(`t-${randomUUID()}`));
    const segments = records.map((r) => first.append(r));
    expect(new Set(segments).size).toBeGreaterThan(1);
    first.close();

    const leftovers = await UsageJournal.leftovers(dir);
    expect(leftovers.length).toBe(new Set(segments).size);
    // A journal opened before adoption does not reuse their names.
    const second = new UsageJournal({ dir });
    expect(second.append(usageRecord("t"))).toBe(Math.max(...segments) + 1);
    second.close();

    const spool = await UsageSpool.open({ dir });
    try {
      expect(await spool.adopt(leftovers)).toBe(records.length);
      const replayed: string[] = [];
      await spool.replay(async (batch) => {
        replayed.push(...batch.map((r) => r.requestId));
      });
      expect(replayed).toEqual(records.map((r) => r.requestId));
      expect(spool.records).toBe(0);
    } finally {
      await spool.close();
    }
    expect((await readdir(dir)).filter((n) => n.endsWith(".jsonl")).sort()).toEqual([journalName(Math.max(...segments) + 1)]);
  });
});
