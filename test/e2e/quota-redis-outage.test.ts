/**
 * Redis goes away under the real service (a child process with REPLICA_COUNT=2) and comes back:
 * first frozen (SIGSTOP, connections open but silent), then shut down and started empty (lost keys,
 * lost scripts). Calls keep succeeding, limits fall back to half of each limit in process, the log
 * says so both ways, and the shared limit is back once Redis answers.
 */
import { randomUUID } from "node:crypto";
import { rmSync } from "node:fs";
import { Code, type Client } from "@connectrpc/connect";
import { afterAll, beforeAll, expect, it } from "vitest";
import { Role, type LlmService } from "../../gen/ts/llm/v1/llm_service_pb.js";
import { ApiKeyStore, type CreatedApiKey } from "../../src/keys/api-keys.js";
import { openDatabase } from "../../src/ledger/database.js";
import { llmClient } from "../helpers/clients.js";
import { describeWithRedis, spawnRedisServer, type OwnRedisServer } from "../helpers/redis.js";
import { detailsOf, outcome } from "../helpers/rpc-outcomes.js";
import { killServiceProcesses, startService, type RunningService } from "../helpers/service-process.js";
import { seededDataDir } from "../helpers/pglite-template.js";

const RPM = 10;
const DEGRADED_RPM = RPM / 2; // REPLICA_COUNT=2
const FALLBACK_LOG = "Redis unreachable: rate limits fall back to in-process limits divided by REPLICA_COUNT";
const RECOVERY_LOG = "Redis answers again: rate limits are shared across replicas again";

/** The shared test server is set only where redis-server is installed; this test starts a private one. */
describeWithRedis("Redis stopped and started under the running service", () => {
  let redis: OwnRedisServer | undefined;
  let service: RunningService;
  let dataDir: string;
  const keys: CreatedApiKey[] = [];

  beforeAll(async () => {
    redis = await spawnRedisServer();
    dataDir = seededDataDir("llm-redis-outage-");
    // Keys go into the embedded database before the service opens (and locks) it.
    const database = await openDatabase({ dataDir });
    try {
      const store = new ApiKeyStore({ db: database.db });
      for (const phase of ["frozen", "restarted"]) {
        keys.push(await store.create({ name: phase, tenant: `outage-${randomUUID()}`, limits: { requestsPerMinute: RPM } }));
      }
    } finally {
      await database.close();
    }
    service = await startService({ DATA_DIR: dataDir, REDIS_URL: redis.url, REPLICA_COUNT: "2", LEDGER_FLUSH_MS: "50" });
  }, 60_000);

  afterAll(async () => {
    killServiceProcesses();
    // Always: a frozen redis-server would otherwise outlive the test run.
    await redis?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }, 30_000);

  function call(client: Client<typeof LlmService>, i: number) {
    return outcome(client.generate({ model: "sim/echo", messages: [{ role: Role.USER, content: `outage ${i}` }] }, { timeoutMs: 10_000 }));
  }

  /** Sequential calls until the first refusal (bounded): how many were admitted, and the refusal. */
  async function admitUntilRefused(client: Client<typeof LlmService>, max: number) {
    for (let admitted = 0; admitted <= max; admitted++) {
      const result = await call(client, admitted);
      if (!result.ok) {
        expect(result.error.code).toBe(Code.ResourceExhausted);
        return { admitted, refusal: detailsOf(result.error) };
      }
    }
    throw new Error(`more than ${max} calls were admitted`);
  }

  const logIndex = () => service.logs.length;
  const isFallback = (l: { level?: string; message?: string }) => l.level === "warn" && l.message === FALLBACK_LOG;
  const isRecovery = (l: { level?: string; message?: string }) => l.level === "info" && l.message === RECOVERY_LOG;

  it("frozen (SIGSTOP): calls go on under half the limit, the fallback is logged, and Redis takes over again after SIGCONT", async () => {
    const key = keys[0]!;
    const client = llmClient(service.baseUrl, "grpc", key.secret);
    for (let i = 0; i < 2; i++) expect((await call(client, i)).ok).toBe(true);

    const before = logIndex();
    redis!.pause();
    try {
      // The first call waits for Redis only briefly, then the in-process share (10 / 2) decides.
      const degraded = await admitUntilRefused(client, RPM);
      expect(degraded.admitted).toBe(DEGRADED_RPM);
      expect(degraded.refusal.info?.reason).toBe("RATE_LIMITED");
      expect(degraded.refusal.quota?.violations[0]?.description).toBe(`requests per minute (limit ${DEGRADED_RPM})`);
      const warned = await service.waitForLog(isFallback, 5_000, before);
      expect(warned["replicaCount"]).toBe(2);
    } finally {
      redis!.resume();
    }
    const resumed = logIndex();
    await service.waitForLog(isRecovery, 10_000, before);

    // Redis counts the 2 calls before the freeze and the one whose admission it took late: 7 more fit.
    const recovered = await admitUntilRefused(client, RPM);
    expect(recovered.admitted).toBe(RPM - 3);
    expect(recovered.refusal.quota?.violations[0]?.description).toBe(`requests per minute (limit ${RPM})`);
    expect(service.logs.slice(resumed).filter(isFallback)).toEqual([]);
  });

  it("shut down and started empty: calls go on, and after the restart the full limit is shared again", async () => {
    const key = keys[1]!;
    const client = llmClient(service.baseUrl, "grpc", key.secret);
    for (let i = 0; i < 2; i++) expect((await call(client, i)).ok).toBe(true);

    const before = logIndex();
    await redis!.stop();
    const degraded = await admitUntilRefused(client, RPM);
    expect(degraded.admitted).toBe(DEGRADED_RPM);
    expect(degraded.refusal.quota?.violations[0]?.description).toBe(`requests per minute (limit ${DEGRADED_RPM})`);
    await service.waitForLog(isFallback, 5_000, before);

    // A new server on the same port: no keys, no scripts. The client reconnects by itself.
    await redis!.start();
    await service.waitForLog(isRecovery, 10_000, before);
    const recovered = await admitUntilRefused(client, RPM);
    expect(recovered.admitted).toBe(RPM);
    expect(recovered.refusal.info?.reason).toBe("RATE_LIMITED");

    // No call failed for any other reason on the way, and the process logged no error.
    expect(service.logs.filter((l) => l.level === "error")).toEqual([]);
  });
});
