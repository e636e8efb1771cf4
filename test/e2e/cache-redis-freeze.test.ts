/**
 * Redis frozen (SIGSTOP: connections open, nothing answered) under the real service: after the first
 * second, cacheable calls and calls with an idempotency key must not each wait out a store timeout.
 * A store that timed out is bypassed, the log says so, and after SIGCONT it is used again.
 */
import { randomUUID } from "node:crypto";
import { rmSync } from "node:fs";
import type { Client } from "@connectrpc/connect";
import { afterAll, beforeAll, expect, it } from "vitest";
import { Role, type LlmService } from "../../gen/ts/llm/v1/llm_service_pb.js";
import { ApiKeyStore, type CreatedApiKey } from "../../src/keys/api-keys.js";
import { openDatabase } from "../../src/ledger/database.js";
import { llmClient } from "../helpers/clients.js";
import { describeWithRedis, spawnRedisServer, type OwnRedisServer } from "../helpers/redis.js";
import { killServiceProcesses, startService, type LogLine, type RunningService } from "../helpers/service-process.js";
import { seededDataDir } from "../helpers/pglite-template.js";

const BYPASSED_LOG = "Redis did not answer in time: the store is bypassed until it answers";
const RECOVERED_LOG = "Redis answers again: the store is used again";
/** How long Redis stays frozen while calls are measured. */
const FREEZE_MS = 3_000;
/** Calls starting this long after the freeze must be fast. */
const GRACE_MS = 1_000;
const WORKERS = 4;

type Kind = "cacheable" | "idempotent";
interface Sample {
  kind: Kind;
  startedAt: number;
  latencyMs: number;
  ok: boolean;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? Number.NaN;
}

describeWithRedis("a frozen Redis under the running service", () => {
  let redis: OwnRedisServer | undefined;
  let service: RunningService;
  let dataDir: string;
  let key: CreatedApiKey;
  let client: Client<typeof LlmService>;

  beforeAll(async () => {
    redis = await spawnRedisServer();
    dataDir = seededDataDir("llm-redis-freeze-");
    const database = await openDatabase({ dataDir });
    try {
      key = await new ApiKeyStore({ db: database.db }).create({ name: "freeze", tenant: `freeze-${randomUUID()}` });
    } finally {
      await database.close();
    }
    service = await startService({ DATA_DIR: dataDir, REDIS_URL: redis.url, LEDGER_FLUSH_MS: "50" });
    client = llmClient(service.baseUrl, "grpc", key.secret);
  }, 60_000);

  afterAll(async () => {
    killServiceProcesses();
    // Always: a frozen redis-server would otherwise outlive the test run.
    await redis?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }, 30_000);

  const cacheable = (prompt: string) =>
    client.generate({ model: "sim/echo", messages: [{ role: Role.USER, content: prompt }], temperature: 0 }, { timeoutMs: 10_000 });
  const idempotent = (prompt: string, idempotencyKey: string) =>
    client.generate({ model: "sim/echo", messages: [{ role: Role.USER, content: prompt }], idempotencyKey }, { timeoutMs: 10_000 });

  async function measure(kind: Kind): Promise<Sample> {
    const startedAt = performance.now();
    const prompt = `freeze ${randomUUID()}`;
    const ok = await (kind === "cacheable" ? cacheable(prompt) : idempotent(prompt, randomUUID())).then(
      () => true,
      () => false,
    );
    return { kind, startedAt, latencyMs: performance.now() - startedAt, ok };
  }

  /** Both stores answer: a repeated cacheable call is a hit, a repeated idempotency key a replay. */
  async function expectStoresUsed(): Promise<void> {
    const prompt = `stored ${randomUUID()}`;
    expect((await cacheable(prompt)).cached).toBe(false);
    expect((await cacheable(prompt)).cached).toBe(true);
    const idempotencyKey = randomUUID();
    const first = await idempotent(prompt, idempotencyKey);
    const again = await idempotent(prompt, idempotencyKey);
    expect(again.id).toBe(first.id);
    expect(again.cached).toBe(true);
  }

  const isLog = (message: string, store: string) => (l: LogLine) => l.message === message && l["store"] === store;

  /** Calls from WORKERS callers, each alternating the two kinds, until `ms` have passed since `from`. */
  async function sample(from: number, ms: number): Promise<Sample[]> {
    const samples: Sample[] = [];
    await Promise.all(
      Array.from({ length: WORKERS }, async (_, worker) => {
        for (let i = 0; i < 10_000 && performance.now() - from < ms; i++) {
          samples.push(await measure((i + worker) % 2 === 0 ? "cacheable" : "idempotent"));
        }
      }),
    );
    return samples;
  }

  it("bypasses the frozen stores after the first second (p50 within the healthy p50 + 30 ms, below one 50 ms store timeout), and uses them again after SIGCONT", async () => {
    await expectStoresUsed();
    // The same calls with Redis answering: what a call costs on this machine now, busy or not.
    const healthy = await sample(performance.now(), GRACE_MS);

    const before = service.logs.length;
    let samples: Sample[];
    redis!.pause();
    const frozenAt = performance.now();
    try {
      samples = await sample(frozenAt, FREEZE_MS);
    } finally {
      redis!.resume();
    }

    expect(samples.filter((s) => !s.ok)).toEqual([]);
    const summary: Record<string, { calls: number; p50Ms: number; healthyP50Ms: number }> = {};
    for (const kind of ["cacheable", "idempotent"] as const) {
      const late = samples.filter((s) => s.kind === kind && s.startedAt - frozenAt >= GRACE_MS).map((s) => s.latencyMs);
      const usual = healthy.filter((s) => s.kind === kind).map((s) => s.latencyMs);
      summary[kind] = { calls: late.length, p50Ms: Math.round(median(late) * 10) / 10, healthyP50Ms: Math.round(median(usual) * 10) / 10 };
    }
    if (process.env["LLM_TEST_VERBOSE"]) console.log("calls started 1-3 s into the freeze:", JSON.stringify(summary));
    for (const kind of ["cacheable", "idempotent"]) {
      expect(summary[kind]!.calls).toBeGreaterThanOrEqual(10);
      // A bypassed call skips Redis, so it is no slower than a healthy one (here 9 against 16 ms); a call
      // that waited out even one store operation (50 ms) on top of its usual cost would be past this.
      expect(summary[kind]!.p50Ms).toBeLessThanOrEqual(summary[kind]!.healthyP50Ms + 30);
    }

    // Each store said when it started bypassing Redis...
    await service.waitForLog(isLog(BYPASSED_LOG, "cache"), 5_000, before);
    await service.waitForLog(isLog(BYPASSED_LOG, "idempotency"), 5_000, before);
    // ...and after SIGCONT the probes are answered, and the stores serve again.
    await service.waitForLog(isLog(RECOVERED_LOG, "cache"), 10_000, before);
    await service.waitForLog(isLog(RECOVERED_LOG, "idempotency"), 10_000, before);
    await expectStoresUsed();
  }, 60_000);
});
