/**
 * Two replicas of the real service (child processes) sharing one Redis and one Postgres: a key's
 * requests-per-minute limit holds across both, exactly, and every call leaves one ledger row.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { Role } from "../../gen/ts/llm/v1/llm_service_pb.js";
import { ApiKeyStore, type CreatedApiKey } from "../../src/keys/api-keys.js";
import { openDatabase, type Database } from "../../src/ledger/database.js";
import { llmClient } from "../helpers/clients.js";
import { createScratchDatabase, describeWithPostgres } from "../helpers/postgres.js";
import { describeWithRedis } from "../helpers/redis.js";
import { detailsOf, outcome } from "../helpers/rpc-outcomes.js";
import { killServiceProcesses, startService, type RunningService } from "../helpers/service-process.js";

const CALLS = 200;
const RPM = 50;

describeWithPostgres("two replicas sharing Redis and Postgres", (postgresUrl) => {
  describeWithRedis("a requests-per-minute limit across replicas", (redisUrl) => {
    let scratch: { url: string; drop(): Promise<void> };
    let database: Database;
    let key: CreatedApiKey;
    const dirs: string[] = [];
    const replicas: RunningService[] = [];

    beforeAll(async () => {
      scratch = await createScratchDatabase(postgresUrl);
      // Opening it runs the migrations, so the replicas find the schema ready.
      database = await openDatabase({ databaseUrl: scratch.url, dataDir: "(unused with Postgres)" });
      key = await new ApiKeyStore({ db: database.db }).create({
        name: "replicas",
        tenant: `replicas-${randomUUID()}`,
        limits: { requestsPerMinute: RPM },
      });
      const env = (dir: string) => ({
        DATABASE_URL: scratch.url,
        REDIS_URL: redisUrl,
        REPLICA_COUNT: "2",
        DATA_DIR: dir,
        LEDGER_FLUSH_MS: "50",
      });
      for (let i = 0; i < 2; i++) dirs.push(mkdtempSync(join(tmpdir(), "llm-replica-")));
      replicas.push(...(await Promise.all(dirs.map((dir) => startService(env(dir))))));
    }, 60_000);

    afterEach(() => killServiceProcesses());
    afterAll(async () => {
      killServiceProcesses();
      await database?.close();
      await scratch?.drop();
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    }, 30_000);

    it(`admits exactly ${RPM} of ${CALLS} concurrent calls split across both, refuses the rest with RATE_LIMITED, and records all ${CALLS}`, async () => {
      const clients = replicas.map((r) => llmClient(r.baseUrl, "grpc", key.secret));
      const calls = Array.from({ length: CALLS }, (_, i) => {
        const replica = i % 2;
        const call = clients[replica]!.generate(
          { model: "sim/echo", messages: [{ role: Role.USER, content: `replica call ${i}` }] },
          { timeoutMs: 15_000 },
        );
        return outcome(call).then((result) => ({ replica, result }));
      });
      const results = await Promise.all(calls);

      const admitted = results.filter((r) => r.result.ok);
      const refused = results.flatMap((r) => (r.result.ok ? [] : [r.result.error]));
      const perReplica = [0, 1].map((n) => admitted.filter((r) => r.replica === n).length);
      console.info(`rpm ${RPM} across two replicas: admitted ${admitted.length} of ${CALLS} (per replica ${perReplica.join(" + ")})`);

      // On failure, the replicas' warnings say whether one fell back to in-process limits, and why.
      const warnings = replicas.flatMap((r, n) => r.logs.filter((l) => l.level === "warn").map((l) => ({ replica: n, ...l })));
      expect(admitted, `replica warnings: ${JSON.stringify(warnings)}`).toHaveLength(RPM);
      expect(refused).toHaveLength(CALLS - RPM);
      for (const err of refused) {
        expect(err.code).toBe(Code.ResourceExhausted);
        const { info, quota, retry } = detailsOf(err);
        expect(info?.reason).toBe("RATE_LIMITED");
        expect(info?.metadata["limit"]).toBe("requests_per_minute");
        expect(quota?.violations).toEqual([
          expect.objectContaining({ subject: `key:${key.id}`, description: `requests per minute (limit ${RPM})` }),
        ]);
        // Waiting helps: at most a minute, when the oldest admission leaves the window.
        const delayMs = Number(retry?.retryDelay?.seconds ?? -1n) * 1000 + (retry?.retryDelay?.nanos ?? 0) / 1e6;
        expect(delayMs).toBeGreaterThan(0);
        expect(delayMs).toBeLessThanOrEqual(60_000);
      }
      // Neither replica fell back to in-process limits: the one shared limit decided every call.
      for (const replica of replicas) {
        expect(replica.logs.filter((l) => String(l.message).startsWith("Redis unreachable"))).toEqual([]);
      }

      // SIGTERM drains each replica's ledger queue before it exits.
      expect(await Promise.all(replicas.map((r) => r.stop()))).toEqual([0, 0]);
      const rows = await database.db.selectFrom("generations").selectAll().where("key_id", "=", key.id).execute();
      expect(rows).toHaveLength(CALLS);
      expect(new Set(rows.map((r) => r.request_id)).size).toBe(CALLS);
      const ok = rows.filter((r) => r.status === "ok");
      const failed = rows.filter((r) => r.status === "failed");
      expect(ok).toHaveLength(RPM);
      expect(failed).toHaveLength(CALLS - RPM);
      expect(new Set(ok.map((r) => r.request_id))).toEqual(new Set(admitted.map((r) => (r.result.ok ? r.result.value.id : ""))));
      for (const row of failed) {
        expect(row.error_reason).toBe("RATE_LIMITED");
        expect(row.tenant).toBe(key.tenant);
        // Refused before the upstream: nothing was spent.
        expect(row.cost_usd_nanos).toBe("0");
        expect(row.attempts).toEqual([]);
      }
    }, 30_000);
  });
});
