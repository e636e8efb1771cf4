/**
 * kill -9 while the ledger is spilling to its spool: a child process (test/fixtures/usage-ledger-child.ts)
 * records usage while its database fails, so it spills continuously, and is killed mid-way. A new
 * ledger on the same spool directory then replays on start: every record the child acknowledged
 * as spooled reaches the database, the spool holds nothing else, and no request id counts twice.
 * Records it had not spooled yet are in its journal, replayed too.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, expect, it } from "vitest";
import { UsageLedger } from "../../src/ledger/usage-ledger.js";
import type { ChildMessage } from "../fixtures/usage-ledger-child.js";
import { describeEachDatabase } from "../helpers/postgres.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const CHILD = join(ROOT, "test/fixtures/usage-ledger-child.ts");

/** Request ids on the complete lines of the spool's segments (or the journal's), and how many torn lines follow them. */
async function readSpool(dir: string, prefix = "spool-"): Promise<{ ids: string[]; torn: number }> {
  const ids: string[] = [];
  let torn = 0;
  for (const f of (await readdir(dir)).filter((n) => n.startsWith(prefix) && n.endsWith(".jsonl"))) {
    const lines = (await readFile(join(dir, f), "utf8")).split("\n");
    const last = lines.pop()!;
    if (last !== "") torn++;
    for (const line of lines) ids.push((JSON.parse(line) as { requestId: string }).requestId);
  }
  return { ids, torn };
}

describeEachDatabase("UsageLedger after kill -9 during a spill", (database) => {
  const children: ChildProcess[] = [];
  const dirs: string[] = [];
  afterEach(async () => {
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
  });

  it(
    "replays on start every record the killed process acknowledged, each once",
    async () => {
      const dir = await mkdtemp(join(tmpdir(), "llm-ledger-kill-"));
      dirs.push(dir);
      const spoolDir = join(dir, "spool");
      const tenant = `kill-${randomBytes(6).toString("hex")}`;
      const withDatabase = database.kind === "postgres";
      const writeFirst = withDatabase ? 120 : 0;
      const killAfterSpooled = 1_500;

      const child = spawn(process.execPath, ["--import", "tsx", CHILD], {
        cwd: ROOT,
        env: {
          ...process.env,
          SPOOL_DIR: spoolDir,
          TENANT: tenant,
          WRITE_FIRST: String(writeFirst),
          ...(withDatabase ? { DB_URL: database.options.databaseUrl } : {}),
        },
        stdio: ["ignore", "ignore", "pipe", "ipc"],
      });
      children.push(child);
      let stderr = "";
      child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<NodeJS.Signals | number | null>((done) =>
        child.on("exit", (code, signal) => done(signal ?? code)),
      );

      // Kill it the moment it has acknowledged enough: it is spilling again by then.
      let acknowledged = { written: 0, spooled: 0 };
      const killed = new Promise<void>((done, fail) => {
        child.on("message", (m: ChildMessage) => {
          acknowledged = { written: m.written ?? acknowledged.written, spooled: m.spooled ?? acknowledged.spooled };
          if (acknowledged.spooled >= killAfterSpooled && child.signalCode === null) {
            child.kill("SIGKILL");
            done();
          }
        });
        void exited.then((how) => fail(new Error(`the child exited (${String(how)}) before it was killed:\n${stderr}`)));
      });
      await killed;
      expect(await exited).toBe("SIGKILL");
      expect(acknowledged.written).toBe(writeFirst);

      // What survived: the rows the child wrote, and the complete lines of its spool.
      const spool = await readSpool(spoolDir);
      const journal = await readSpool(spoolDir, "journal-");
      const before = await database.db.selectFrom("generations").select("request_id").where("tenant", "=", tenant).execute();
      const survived = new Set([...before.map((r) => r.request_id), ...spool.ids, ...journal.ids]);
      expect(new Set(spool.ids).size).toBe(spool.ids.length);
      expect(survived.size).toBeGreaterThanOrEqual(acknowledged.written + acknowledged.spooled);
      // Everything recorded before the kill, with no gap: what was not spooled yet was journaled.
      expect(survived).toEqual(new Set(Array.from({ length: survived.size }, (_, i) => `${tenant}-${i}`)));
      if (withDatabase) {
        // The first failing INSERT committed before it failed: its batch is in the database and in the spool.
        const committedThenFailed = before.length - writeFirst;
        expect(committedThenFailed).toBeGreaterThan(0);
        const inBoth = spool.ids.filter((id) => before.some((r) => r.request_id === id));
        expect(inBoth).toHaveLength(committedThenFailed);
      }

      const errors: Error[] = [];
      const ledger = new UsageLedger({ db: database.db, spoolDir, onError: (err) => errors.push(err) });
      try {
        await ledger.start();
        await ledger.flush();
        expect(ledger.spooled).toBe(0);
      } finally {
        await ledger.close();
      }

      const after = await database.db.selectFrom("generations").select("request_id").where("tenant", "=", tenant).execute();
      expect(new Set(after.map((r) => r.request_id))).toEqual(survived);
      expect(after).toHaveLength(survived.size);
      // Only a torn last line may have been skipped, and it was reported.
      expect(errors.map((e) => e.name)).toEqual(Array.from({ length: spool.torn + journal.torn }, () => "UsageSpoolCorruptLineError"));
      expect((await readdir(spoolDir)).filter((n) => n.endsWith(".jsonl"))).toEqual([]);
    },
    40_000,
  );
});
