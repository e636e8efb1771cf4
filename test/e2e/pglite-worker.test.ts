/**
 * The service with PGLITE_WORKER=true: the real process (`node --import tsx src/main.ts`) keeps
 * its embedded database in a worker thread, answers calls, records them, and stops cleanly.
 */
import { rmSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { Role } from "../../gen/ts/llm/v1/llm_service_pb.js";
import { openDatabase } from "../../src/ledger/database.js";
import { llmClient } from "../helpers/clients.js";
import { killServiceProcesses, startService } from "../helpers/service-process.js";
import { seededDataDir } from "../helpers/pglite-template.js";

afterEach(() => {
  killServiceProcesses();
});

describe("PGLITE_WORKER=true", () => {
  it("serves calls with the ledger in a worker thread, records every one, and stops with exit 0", async () => {
    const dataDir = seededDataDir("llm-pglite-worker-");
    try {
      const service = await startService({ DATA_DIR: dataDir, PGLITE_WORKER: "true", SIM_INTER_TOKEN_MS: "0" }, 60_000);
      const key = (await service.waitForStderr(/export LLM_API_KEY=(\S+)/, 5000))[1] ?? "";
      const client = llmClient(service.baseUrl, "grpc", key);
      const answers = await Promise.all(
        Array.from({ length: 20 }, (_, i) => client.generate({ model: "sim/lorem", messages: [{ role: Role.USER, content: `call ${i}` }] })),
      );
      for (const answer of answers) expect(answer.usage?.outputTokens).toBeGreaterThan(0n);
      expect(await service.stop()).toBe(0);

      // What the worker wrote is in the database files, read back in this process.
      const database = await openDatabase({ dataDir });
      try {
        const rows = await database.db.selectFrom("generations").select(["request_id", "status"]).execute();
        expect(rows).toHaveLength(20);
        expect(new Set(rows.map((r) => r.status))).toEqual(new Set(["ok"]));
      } finally {
        await database.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 120_000);
});
