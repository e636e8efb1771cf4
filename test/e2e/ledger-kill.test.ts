/**
 * kill -9 under load, for real: the service (a child process) serves concurrent unary and
 * streaming calls over gRPC and Connect, is SIGKILLed mid-load, and is started again on the same
 * DATA_DIR and database, several times. Every call a client saw succeed (a unary response, a
 * stream that ended OK) must have its ledger row once the restarted service has replayed its
 * journal, on PGlite and on Postgres. Records wait in memory up to LEDGER_FLUSH_MS (200 ms here)
 * before their INSERT, so without the journal a kill loses the calls of the last moments.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Client } from "@connectrpc/connect";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { LlmService, Role } from "../../gen/ts/llm/v1/llm_service_pb.js";
import { openDatabase } from "../../src/ledger/database.js";
import { llmClient } from "../helpers/clients.js";
import { createScratchDatabase, describeWithPostgres } from "../helpers/postgres.js";
import { killServiceProcesses, startService, withTimeout, type RunningService } from "../helpers/service-process.js";
import { seededDataDir } from "../helpers/pglite-template.js";

const ROUNDS = 3;
/** Calls acknowledged in a round before the kill. */
const KILL_AFTER = 80;
const WORKERS = 24;
const START_TIMEOUT_MS = 60_000;

afterEach(() => killServiceProcesses());

/** Drives calls until `stop()` and the service is gone; collects the ids of the calls that succeeded. */
function load(service: RunningService, key: string, onAck: (id: string) => void): { stop(): void; done: Promise<void> } {
  const clients: Client<typeof LlmService>[] = [llmClient(service.baseUrl, "grpc", key), llmClient(service.baseUrl, "connect-h1", key)];
  let stopped = false;
  const worker = async (w: number) => {
    // Bounded: a worker ends when the service is gone (its calls fail), or after 2,000 calls.
    for (let i = 0; i < 2_000 && !stopped; i++) {
      const client = clients[(w + i) % clients.length]!;
      const request = { model: "sim/lorem", messages: [{ role: Role.USER, content: `worker ${w} call ${i}` }], maxOutputTokens: 8 };
      try {
        if ((w + i) % 2 === 0) {
          onAck((await client.generate(request, { timeoutMs: 10_000 })).id);
        } else {
          let id: string | undefined;
          for await (const message of client.streamGenerate(request, { timeoutMs: 10_000 })) {
            if (message.event.case === "started") id = message.event.value.id;
          }
          // The stream ended with an OK status: acknowledged.
          if (id !== undefined) onAck(id);
        }
      } catch {
        if (service.child.exitCode !== null || service.child.signalCode !== null) return;
      }
    }
  };
  const done = Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w))).then(() => undefined);
  return { stop: () => (stopped = true), done };
}

/** Waits until a service that found records left by the killed one has replayed all of them. */
async function replayed(service: RunningService): Promise<void> {
  const found = service.logs.find((l) => l.message === "replaying usage records left by an earlier process");
  if (found === undefined) return;
  await service.waitForLog((l) => l.message === "usage records replayed from the spool" && l["remaining"] === 0, 30_000);
}

/**
 * Rounds of: load, kill -9 once KILL_AFTER calls were acknowledged, restart, wait for the replay.
 * Returns every acknowledged id and the service left running.
 */
async function killRounds(env: Record<string, string>): Promise<{ acknowledged: Set<string>; service: RunningService; perRound: string[] }> {
  let service = await startService(env, START_TIMEOUT_MS);
  const key = (await service.waitForStderr(/export LLM_API_KEY=(\S+)/, 5000))[1] ?? "";
  const acknowledged = new Set<string>();
  const perRound: string[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    let acks = 0;
    let killed: () => void = () => undefined;
    const reached = new Promise<void>((resolve) => (killed = resolve));
    const running = load(service, key, (id) => {
      acknowledged.add(id);
      if (++acks === KILL_AFTER) killed();
    });
    await withTimeout(Promise.race([reached, running.done]), 30_000, `${KILL_AFTER} acknowledged calls`);
    service.child.kill("SIGKILL");
    running.stop();
    expect(await service.exited).toBe("SIGKILL");
    await withTimeout(running.done, 15_000, "the load's end after the kill");
    perRound.push(`${acks} acknowledged`);
    service = await startService(env, START_TIMEOUT_MS);
    await replayed(service);
  }
  return { acknowledged, service, perRound };
}

describe("kill -9 under load [pglite]", () => {
  const dataDir = seededDataDir("llm-kill-pglite-");
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it(
    `every acknowledged call has its row after ${ROUNDS} hard kills and restarts`,
    async () => {
      const { acknowledged, service, perRound } = await killRounds({ DATA_DIR: dataDir });
      expect(await service.stop()).toBe(0);
      const database = await openDatabase({ dataDir });
      try {
        const rows = await database.db.selectFrom("generations").select("request_id").execute();
        const stored = new Set(rows.map((r) => r.request_id));
        const missing = [...acknowledged].filter((id) => !stored.has(id));
        expect(missing, `rounds: ${perRound.join(", ")}; ${missing.length} of ${acknowledged.size} missing`).toEqual([]);
        expect(rows).toHaveLength(stored.size);
      } finally {
        await database.close();
      }
    },
    180_000,
  );
});

describeWithPostgres("kill -9 under load [postgres]", (postgresUrl) => {
  const dataDir = mkdtempSync(join(tmpdir(), "llm-kill-postgres-"));
  let drop: (() => Promise<void>) | undefined;
  afterAll(async () => {
    await drop?.();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it(
    `every acknowledged call has its row after ${ROUNDS} hard kills and restarts`,
    async () => {
      const scratch = await createScratchDatabase(postgresUrl);
      drop = scratch.drop;
      const { acknowledged, service, perRound } = await killRounds({ DATA_DIR: dataDir, DATABASE_URL: scratch.url });
      // Read while the service runs (and once it is stopped): Postgres is shared.
      expect(await service.stop()).toBe(0);
      const database = await openDatabase({ databaseUrl: scratch.url, dataDir });
      try {
        const rows = await database.db.selectFrom("generations").select("request_id").execute();
        const stored = new Set(rows.map((r) => r.request_id));
        const missing = [...acknowledged].filter((id) => !stored.has(id));
        expect(missing, `rounds: ${perRound.join(", ")}; ${missing.length} of ${acknowledged.size} missing`).toEqual([]);
        expect(rows).toHaveLength(stored.size);
      } finally {
        await database.close();
      }
    },
    180_000,
  );
});
