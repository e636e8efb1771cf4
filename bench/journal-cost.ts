/**
 * `npx tsx bench/journal-cost.ts`: what the ledger's journal (src/ledger/usage-journal.ts) costs per
 * usage record, isolated from everything else a call does. One process records N realistic records
 * into a UsageLedger with a spool, journal on and off in interleaved rounds, and reads its own CPU
 * time (user + system, so the write(2) counts) over recording and writing them all. The database is
 * Kysely's DummyDriver (every INSERT succeeds at once), so both modes do the same ledger work and
 * the difference is the journal's: encoding the line, write(2), and clearing released segments.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DummyDriver, Kysely, PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler } from "kysely";
import type { UsageRecord } from "../src/core/types.js";
import type { DatabaseSchema } from "../src/ledger/schema.js";
import { UsageLedger } from "../src/ledger/usage-ledger.js";
import { fmt, table } from "./stats.ts";

const N = Number(process.env.JOURNAL_RECORDS ?? 20_000);
const ROUNDS = Number(process.env.JOURNAL_ROUNDS ?? 5);
/** Records between yields to the event loop, as calls finishing one after another would leave it. */
const PER_TICK = 8;

const db = new Kysely<DatabaseSchema>({
  dialect: {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () => new DummyDriver(),
    createIntrospector: (k) => new PostgresIntrospector(k),
    createQueryCompiler: () => new PostgresQueryCompiler(),
  },
});

function usageRecord(i: number): UsageRecord {
  const startedAt = new Date();
  return {
    id: crypto.randomUUID(),
    requestId: crypto.randomUUID(),
    keyId: "k_0123456789",
    tenant: "default",
    model: "gpt-4o-mini",
    provider: "openai",
    status: "ok",
    errorReason: null,
    inputTokens: 24 + (i % 7),
    outputTokens: 16,
    cachedInputTokens: 0,
    cacheWriteInputTokens: 0,
    reasoningTokens: 0,
    costUsdNanos: 12_345n,
    cached: false,
    attempts: [{ provider: "openai", deployment: "openai-main", reason: "OK", latencyMs: 4.2 }],
    latencyMs: 5.1,
    timeToFirstTokenMs: 3.3,
    startedAt,
    finishedAt: startedAt,
    metadata: { team: "search", feature: "autocomplete" },
  };
}

async function round(journal: boolean): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "llm-journal-cost-"));
  try {
    const ledger = new UsageLedger({ db, spoolDir: join(dir, "spool"), journal });
    await ledger.start();
    const records = Array.from({ length: N }, (_, i) => usageRecord(i));
    const before = process.cpuUsage();
    for (let i = 0; i < N; i++) {
      ledger.record(records[i]!);
      if (i % PER_TICK === PER_TICK - 1) await new Promise<void>((resolve) => setImmediate(resolve));
    }
    await ledger.flush();
    const used = process.cpuUsage(before);
    await ledger.close();
    return (used.user + used.system) / N;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const off: number[] = [];
const on: number[] = [];
await round(false); // warm-up
await round(true);
for (let r = 0; r < ROUNDS; r++) {
  off.push(await round(false));
  on.push(await round(true));
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
const rows = [
  ["journal off", fmt(median(off), 1), off.map((x) => fmt(x, 1)).join(", ")],
  ["journal on", fmt(median(on), 1), on.map((x) => fmt(x, 1)).join(", ")],
  ["journal's cost", fmt(median(on) - median(off), 1), ""],
];
process.stdout.write(`ledger CPU µs per record, ${N} records per round, ${ROUNDS} interleaved rounds (median)\n\n`);
process.stdout.write(`${table(["", "µs/record", "rounds"], rows)}\n`);
await db.destroy();
