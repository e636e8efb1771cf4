import { randomUUID } from "node:crypto";
import { appendFile, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { UsageRecord } from "../../src/core/types.js";
import { decodeSpooledRecord, encodeSpooledRecord } from "../../src/ledger/spooled-record.js";
import { UsageSpool, type UsageSpoolOptions } from "../../src/ledger/usage-spool.js";
import { UsageSpoolCorruptLineError, UsageSpoolDropError } from "../../src/ledger/usage-spool-errors.js";

function usageRecord(overrides: Partial<UsageRecord> = {}): UsageRecord {
  const startedAt = new Date("2026-03-01T12:00:00.123Z");
  return {
    id: randomUUID(),
    requestId: randomUUID(),
    keyId: "key-1",
    tenant: "tenant-a",
    model: "sim-small",
    provider: "sim",
    status: "ok",
    errorReason: null,
    inputTokens: 10,
    outputTokens: 20,
    cachedInputTokens: 0,
    cacheWriteInputTokens: 0,
    reasoningTokens: 0,
    costUsdNanos: 1_500n,
    cached: false,
    attempts: [{ provider: "sim", deployment: "sim-small", reason: "OK", latencyMs: 12 }],
    latencyMs: 15,
    timeToFirstTokenMs: 5,
    startedAt,
    finishedAt: new Date(startedAt.getTime() + 15),
    metadata: { team: "search" },
    ...overrides,
  };
}

const records = (n: number) => Array.from({ length: n }, (_, i) => usageRecord({ inputTokens: i }));

const dirs: string[] = [];
const spools: UsageSpool[] = [];
afterEach(async () => {
  await Promise.all(spools.splice(0).map((s) => s.close()));
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "llm-spool-test-"));
  dirs.push(dir);
  return join(dir, "spool");
}

async function openSpool(dir: string, options: Partial<UsageSpoolOptions> = {}) {
  const errors: Error[] = [];
  const spool = await UsageSpool.open({ dir, onError: (err) => errors.push(err), ...options });
  spools.push(spool);
  return { spool, errors };
}

async function segmentFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((f) => f.endsWith(".jsonl")).sort();
}

/** Replays everything into an array. */
async function drain(spool: UsageSpool, batchSize = 256) {
  const got: UsageRecord[] = [];
  const result = await spool.replay(
    async (batch) => {
      got.push(...batch);
    },
    { batchSize },
  );
  return { got, result };
}

describe("UsageSpool", () => {
  it("replays appended records in order with bigints, dates, nulls and metadata intact", async () => {
    const dir = await tempDir();
    const { spool } = await openSpool(dir);
    const written = [
      usageRecord({ costUsdNanos: 2n ** 63n - 1n, metadata: { "b c": "ü\n\"quoted\"", emoji: "🦀" } }),
      usageRecord({
        status: "failed",
        errorReason: "PROVIDER_UNAVAILABLE",
        timeToFirstTokenMs: null,
        cached: true,
        costUsdNanos: 0n,
        attempts: [
          { provider: "openai", deployment: "gpt-a", reason: "PROVIDER_UNAVAILABLE", latencyMs: 30 },
          { provider: "sim", deployment: "sim-b", reason: "OK", latencyMs: 9 },
        ],
      }),
      ...records(5),
    ];
    expect(await spool.append(written.slice(0, 2))).toEqual({ spooled: 2, dropped: 0 });
    expect(await spool.append(written.slice(2))).toEqual({ spooled: 5, dropped: 0 });
    expect(spool.records).toBe(7);

    const { got, result } = await drain(spool, 3);
    expect(got).toEqual(written);
    expect(got[0]!.costUsdNanos).toBe(2n ** 63n - 1n);
    expect(got[0]!.startedAt).toBeInstanceOf(Date);
    expect(result).toEqual({ replayed: 7, skipped: 0, segments: 1 });
    expect(spool.records).toBe(0);
    expect(spool.bytes).toBe(0);
    expect(await segmentFiles(dir)).toEqual([]);
  });

  it("writes one JSON object per line, cost as a decimal string and dates as ISO 8601", async () => {
    const dir = await tempDir();
    const { spool } = await openSpool(dir);
    const r = usageRecord({ costUsdNanos: 2n ** 60n + 7n });
    await spool.append([r]);
    const [file] = await segmentFiles(dir);
    const text = await readFile(join(dir, file!), "utf8");
    expect(text.endsWith("\n")).toBe(true);
    expect(text.split("\n")).toHaveLength(2);
    const line = JSON.parse(text) as Record<string, unknown>;
    expect(line["costUsdNanos"]).toBe((2n ** 60n + 7n).toString());
    expect(line["startedAt"]).toBe("2026-03-01T12:00:00.123Z");
    expect(line["requestId"]).toBe(r.requestId);
  });

  it("keeps the usage detail counts, and reads a line spooled before them as none", () => {
    const r = usageRecord({ cachedInputTokens: 7, cacheWriteInputTokens: 2, reasoningTokens: 11 });
    expect(decodeSpooledRecord(encodeSpooledRecord(r))).toEqual(r);
    const older = JSON.parse(encodeSpooledRecord(r)) as Record<string, unknown>;
    delete older["cachedInputTokens"];
    delete older["cacheWriteInputTokens"];
    delete older["reasoningTokens"];
    expect(decodeSpooledRecord(JSON.stringify(older))).toEqual({ ...r, cachedInputTokens: 0, cacheWriteInputTokens: 0, reasoningTokens: 0 });
  });

  it("finds what a previous instance left and replays it after reopening", async () => {
    const dir = await tempDir();
    const first = await openSpool(dir);
    const written = records(10);
    await first.spool.append(written);
    await first.spool.close();

    const second = await openSpool(dir);
    expect(second.spool.records).toBe(10);
    const { got } = await drain(second.spool);
    expect(got.map((r) => r.requestId)).toEqual(written.map((r) => r.requestId));
  });

  it("skips and reports a torn last line, and replays every complete line before it", async () => {
    const dir = await tempDir();
    const first = await openSpool(dir);
    const written = records(3);
    await first.spool.append(written);
    await first.spool.close();
    // A crash in the middle of the next append: part of a line, no newline.
    const [file] = await segmentFiles(dir);
    const partial = encodeSpooledRecord(usageRecord()).slice(0, 57);
    await appendFile(join(dir, file!), partial);

    const second = await openSpool(dir);
    const { got, result } = await drain(second.spool);
    expect(got.map((r) => r.requestId)).toEqual(written.map((r) => r.requestId));
    expect(result).toEqual({ replayed: 3, skipped: 1, segments: 1 });
    expect(second.errors).toEqual([expect.any(UsageSpoolCorruptLineError)]);
    const torn = second.errors[0] as UsageSpoolCorruptLineError;
    expect(torn.line).toBe(4);
    expect(torn.bytes).toBe(57);
    expect(torn.file).toBe(join(dir, file!));
    expect(await segmentFiles(dir)).toEqual([]);
  });

  it("skips and reports a line that is not a record without stopping the replay", async () => {
    const dir = await tempDir();
    const first = await openSpool(dir);
    const [a, b] = records(2);
    await first.spool.append([a!]);
    await first.spool.close();
    const [file] = await segmentFiles(dir);
    await appendFile(join(dir, file!), `{"id":"x","costUsdNanos":12}\n${encodeSpooledRecord(b!)}\n`);

    const second = await openSpool(dir);
    const { got, result } = await drain(second.spool);
    expect(got.map((r) => r.requestId)).toEqual([a!.requestId, b!.requestId]);
    expect(result.skipped).toBe(1);
    expect(second.errors).toEqual([expect.any(UsageSpoolCorruptLineError)]);
    expect((second.errors[0] as UsageSpoolCorruptLineError).line).toBe(2);
  });

  it("rotates segments by size and deletes each one only after all its records were written", async () => {
    const dir = await tempDir();
    const { spool } = await openSpool(dir, { segmentBytes: 2_000 });
    const written = records(30);
    for (const r of written) await spool.append([r]);
    const before = await segmentFiles(dir);
    expect(before.length).toBeGreaterThan(3);

    const fileOf = new Map<string, string>();
    for (const f of before) {
      for (const line of (await readFile(join(dir, f), "utf8")).trim().split("\n")) {
        fileOf.set((JSON.parse(line) as { requestId: string }).requestId, f);
      }
    }

    const got: UsageRecord[] = [];
    const result = await spool.replay(
      async (batch) => {
        // Every segment a batch's records come from is still on disk while it is being written.
        const present = await segmentFiles(dir);
        for (const r of batch) expect(present).toContain(fileOf.get(r.requestId));
        got.push(...batch);
      },
      { batchSize: 4 },
    );
    expect(result.segments).toBe(before.length);
    expect(got.map((r) => r.requestId)).toEqual(written.map((r) => r.requestId));
    expect(await segmentFiles(dir)).toEqual([]);
  });

  it("keeps the segment whose write failed, and the later ones, for the next replay", async () => {
    const dir = await tempDir();
    const { spool } = await openSpool(dir, { segmentBytes: 2_000 });
    const written = records(30);
    for (const r of written) await spool.append([r]);
    const files = await segmentFiles(dir);
    const firstSegmentRecords = (await readFile(join(dir, files[0]!), "utf8")).trim().split("\n").length;

    let calls = 0;
    const got: UsageRecord[] = [];
    await expect(
      spool.replay(
        async (batch) => {
          // Fails on the first batch of the second segment.
          if (++calls > firstSegmentRecords) throw new Error("connect ECONNREFUSED (simulated)");
          got.push(...batch);
        },
        { batchSize: 1 },
      ),
    ).rejects.toThrow(/ECONNREFUSED/);
    expect(got).toHaveLength(firstSegmentRecords);
    expect(await segmentFiles(dir)).toEqual(files.slice(1));
    expect(spool.records).toBe(30 - firstSegmentRecords);

    const rest = await drain(spool);
    expect(rest.got.map((r) => r.requestId)).toEqual(written.slice(firstSegmentRecords).map((r) => r.requestId));
    expect(spool.records).toBe(0);
  });

  it("leaves the spool untouched when the first write fails", async () => {
    const dir = await tempDir();
    const { spool } = await openSpool(dir);
    const written = records(8);
    await spool.append(written);
    const [file] = await segmentFiles(dir);
    const bytes = await readFile(join(dir, file!));

    await expect(
      spool.replay(async () => {
        throw new Error("database down");
      }),
    ).rejects.toThrow("database down");
    expect(await segmentFiles(dir)).toEqual([file]);
    expect(await readFile(join(dir, file!))).toEqual(bytes);
    expect(spool.records).toBe(8);

    const { got } = await drain(spool);
    expect(got.map((r) => r.requestId)).toEqual(written.map((r) => r.requestId));
  });

  it("stops between batches when the signal aborts, keeping the segment", async () => {
    const dir = await tempDir();
    const { spool } = await openSpool(dir);
    await spool.append(records(6));
    const stop = new AbortController();
    let calls = 0;
    await expect(
      spool.replay(
        async () => {
          if (++calls === 2) stop.abort();
        },
        { batchSize: 2, signal: stop.signal },
      ),
    ).rejects.toThrow();
    expect(calls).toBe(2);
    expect(spool.records).toBe(6);
  });

  it("takes appends made during a replay into a new segment, and loses none of them", async () => {
    const dir = await tempDir();
    const { spool } = await openSpool(dir);
    const early = records(5);
    const late = records(5);
    await spool.append(early);
    const got: UsageRecord[] = [];
    await spool.replay(
      async (batch) => {
        got.push(...batch);
        await spool.append(late.splice(0, 1));
      },
      { batchSize: 1 },
    );
    expect(got).toHaveLength(5);
    expect(spool.records).toBe(5);
    const { got: rest } = await drain(spool);
    expect(rest).toHaveLength(5);
  });

  it("writes concurrent appends together and acknowledges each", async () => {
    const dir = await tempDir();
    const { spool } = await openSpool(dir);
    const results = await Promise.all(Array.from({ length: 50 }, () => spool.append(records(2))));
    expect(results.every((r) => r.spooled === 2 && r.dropped === 0)).toBe(true);
    expect(spool.records).toBe(100);
    expect((await drain(spool)).got).toHaveLength(100);
  });

  it("drops and reports records past maxBytes, and takes records again once a replay made room", async () => {
    const dir = await tempDir();
    const lineBytes = Buffer.byteLength(`${encodeSpooledRecord(usageRecord())}\n`);
    const { spool, errors } = await openSpool(dir, { maxBytes: lineBytes * 5 + lineBytes / 2 });

    expect(await spool.append(records(8))).toEqual({ spooled: 5, dropped: 3 });
    expect(await spool.append(records(1))).toEqual({ spooled: 0, dropped: 1 });
    expect(spool.records).toBe(5);
    expect(spool.dropped).toBe(4);
    expect(errors).toEqual([expect.any(UsageSpoolDropError), expect.any(UsageSpoolDropError)]);
    expect((errors[0] as UsageSpoolDropError).dropped).toBe(3);
    expect(errors[0]!.message).toMatch(/spool is full/);
    expect(spool.bytes).toBeLessThanOrEqual(lineBytes * 5 + lineBytes / 2);

    await drain(spool);
    expect(await spool.append(records(2))).toEqual({ spooled: 2, dropped: 0 });
  });

  it("drops and reports a record that cannot be encoded, and spools the rest", async () => {
    const dir = await tempDir();
    const { spool, errors } = await openSpool(dir);
    const bad = usageRecord({ startedAt: new Date(Number.NaN) });
    expect(await spool.append([usageRecord(), bad, usageRecord()])).toEqual({ spooled: 2, dropped: 1 });
    expect(errors).toEqual([expect.any(UsageSpoolDropError)]);
  });

  it("refuses a second open of the same directory until the first is closed", async () => {
    const dir = await tempDir();
    const { spool } = await openSpool(dir);
    await expect(UsageSpool.open({ dir })).rejects.toThrow(/already open/);
    await spool.close();
    const again = await openSpool(dir);
    expect(again.spool.records).toBe(0);
  });

  it("takes over a lock left by a process that is gone", async () => {
    const dir = await tempDir();
    const first = await openSpool(dir);
    await first.spool.close();
    // A pid that cannot be alive: above the Linux pid_max limit.
    await writeFile(join(dir, "spool.lock"), "4194305");
    const { spool } = await openSpool(dir);
    expect(spool.records).toBe(0);
    expect(await readFile(join(dir, "spool.lock"), "utf8")).toBe(String(process.pid));
  });

  it("refuses a directory locked by another live process", async () => {
    const dir = await tempDir();
    const first = await openSpool(dir);
    await first.spool.close();
    await writeFile(join(dir, "spool.lock"), String(process.ppid));
    await expect(UsageSpool.open({ dir })).rejects.toThrow(/in use by process/);
  });

  it("removes empty segments on open and keeps counting from the highest one", async () => {
    const dir = await tempDir();
    const first = await openSpool(dir);
    await first.spool.append(records(1));
    await first.spool.close();
    await writeFile(join(dir, "spool-000000000007.jsonl"), "");
    const [kept] = await segmentFiles(dir);

    const { spool } = await openSpool(dir);
    expect(await segmentFiles(dir)).toEqual([kept]);
    await spool.append(records(1));
    const files = await segmentFiles(dir);
    expect(files).toEqual([kept, "spool-000000000008.jsonl"]);
    expect((await stat(join(dir, files[1]!))).size).toBeGreaterThan(0);
  });

  it("rejects appends after close", async () => {
    const dir = await tempDir();
    const { spool } = await openSpool(dir);
    await spool.close();
    await expect(spool.append(records(1))).rejects.toThrow(/closed/);
  });
});

describe("spooled record lines", () => {
  it("keep the caller's request id, and read lines written before it existed as having none", () => {
    const withId = usageRecord({ clientRequestId: "caller-1" });
    expect(decodeSpooledRecord(encodeSpooledRecord(withId))).toEqual(withId);
    const without = usageRecord();
    expect(decodeSpooledRecord(encodeSpooledRecord(without))).toEqual(without);
    expect(decodeSpooledRecord(encodeSpooledRecord(without))).not.toHaveProperty("clientRequestId");
  });
});
