/**
 * Budgets and limits through the real service under concurrency, in process (memory limiter,
 * embedded database) and on Redis + Postgres: a USD budget that fits about ten calls, tokens per
 * minute reserved and settled, exact concurrency, and tenant limits on top of the keys'.
 */
import { randomUUID } from "node:crypto";
import { Code, type Client } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Role, type LlmService } from "../../gen/ts/llm/v1/llm_service_pb.js";
import type { CreateApiKeyInput } from "../../src/keys/api-keys.js";
import { startHarness, type Harness } from "../helpers/harness.js";
import { createScratchDatabase, describeWithPostgres } from "../helpers/postgres.js";
import { describeWithRedis } from "../helpers/redis.js";
import { detailsOf, outcome, type Outcome } from "../helpers/rpc-outcomes.js";

/** 1000 USD per million tokens, in and out: one token costs 1,000,000 nanos, so costs are easy to check. */
const NANOS_PER_TOKEN = 1_000_000n;
const MODEL = "budget/echo";
const CATALOGUE = `models:
  - id: ${MODEL}
    contextWindow: 4096
    maxOutputTokens: 64
    price: { inputPerMillion: 1000, outputPerMillion: 1000 }
    deployments:
      - { provider: sim, model: echo }
`;
/** Echoed back: four output tokens. */
const PROMPT = "alpha beta gamma delta";
/** The reservation covers up to eight output tokens; the echo uses four, so every call settles below it. */
const MAX_OUTPUT = 8;

function limitsSuite(name: string, env: () => Record<string, string>): void {
  describe(name, () => {
    let server: Harness;
    /** Pre-flight input tokens of PROMPT, taken from a real response. */
    let inputTokens: bigint;
    let reservation: bigint;
    let actualCost: bigint;

    beforeAll(async () => {
      server = await startHarness({ catalogue: CATALOGUE, env: env() });
      const probe = await server.client().generate(request());
      inputTokens = probe.usage!.inputTokens;
      expect(probe.usage?.outputTokens).toBe(4n);
      reservation = (inputTokens + BigInt(MAX_OUTPUT)) * NANOS_PER_TOKEN;
      actualCost = (inputTokens + 4n) * NANOS_PER_TOKEN;
      expect(probe.costUsdNanos).toBe(actualCost);
    }, 60_000);

    afterAll(async () => {
      await server?.close();
    });

    function request(metadata: Record<string, string> = {}) {
      return { model: MODEL, messages: [{ role: Role.USER, content: PROMPT }], maxOutputTokens: MAX_OUTPUT, metadata };
    }

    /** A key of its own (unique tenant too), so runs against a shared Redis never see each other's counters. */
    async function keyWith(input: Partial<CreateApiKeyInput>) {
      const key = await server.app.keys.create({ name: "limits", tenant: `limits-${randomUUID()}`, ...input });
      return { ...key, client: server.client("grpc", key.secret) };
    }

    /** `n` calls at once; each holds its admission for `holdMs` before the first token, so they overlap. */
    function parallel(client: Client<typeof LlmService>, n: number, holdMs: number) {
      return Promise.all(
        Array.from({ length: n }, () => outcome(client.generate(request({ "sim-stall-ms": String(holdMs) }), { timeoutMs: 15_000 }))),
      );
    }

    function split<T>(results: Outcome<T>[]) {
      return {
        ok: results.flatMap((r) => (r.ok ? [r.value] : [])),
        refused: results.flatMap((r) => (r.ok ? [] : [r.error])),
      };
    }

    it("50 parallel calls against a budget that fits 10 reservations spend at most the budget plus one reservation", async () => {
      const budget = 10n * reservation;
      const key = await keyWith({ limits: { budgetUsdNanosPerDay: budget } });
      const { ok, refused } = split(await parallel(key.client, 50, 300));
      console.info(
        `[${name}] budget ${budget} nanos = 10 reservations of ${reservation} (true cost ${actualCost}): admitted ${ok.length} of 50`,
      );

      // At least the 10 reservations fit; at most what the budget buys at the true cost.
      expect(ok.length).toBeGreaterThanOrEqual(10);
      expect(BigInt(ok.length)).toBeLessThanOrEqual(budget / actualCost);
      expect(refused).toHaveLength(50 - ok.length);
      for (const err of refused) {
        expect(err.code).toBe(Code.ResourceExhausted);
        const { info, quota } = detailsOf(err);
        expect(info?.reason).toBe("BUDGET_EXCEEDED");
        expect(info?.metadata["limit"]).toBe("budget_usd_per_day");
        expect(quota?.violations[0]?.subject).toBe(`key:${key.id}`);
        expect(quota?.violations[0]?.description).toMatch(/^USD budget per UTC day \(limit [\d.]+ USD\)$/);
      }

      await server.app.ledger.flush();
      const rows = await server.app.database.db.selectFrom("generations").selectAll().where("key_id", "=", key.id).execute();
      expect(rows).toHaveLength(50);
      const spent = rows.reduce((sum, r) => sum + BigInt(r.cost_usd_nanos), 0n);
      expect(spent).toBeLessThanOrEqual(budget + reservation);
      expect(spent).toBe(ok.reduce((sum, r) => sum + r.costUsdNanos, 0n));
      expect(rows.filter((r) => r.error_reason === "BUDGET_EXCEEDED")).toHaveLength(refused.length);
    });

    it("tokens per minute reserve input + max_output_tokens and settle to the true count", async () => {
      const perCall = Number(inputTokens) + MAX_OUTPUT;
      const used = Number(inputTokens) + 4;
      // Room for two reservations, not three; after settling, two true counts plus one reservation fit exactly.
      const tpm = 2 * used + perCall;
      expect(tpm).toBeLessThan(3 * perCall);
      const key = await keyWith({ limits: { tokensPerMinute: tpm } });

      const first = split(await parallel(key.client, 5, 300));
      expect(first.ok).toHaveLength(2);
      expect(first.refused.map((e) => detailsOf(e).info?.reason)).toEqual(Array(3).fill("RATE_LIMITED"));
      expect(detailsOf(first.refused[0]!).info?.metadata["limit"]).toBe("tokens_per_minute");
      expect(detailsOf(first.refused[0]!).retry?.retryDelay).toBeDefined();

      // Both settled at their true count: one more reservation fits now, a second does not.
      const second = split(await parallel(key.client, 2, 300));
      expect(second.ok).toHaveLength(1);
      expect(detailsOf(second.refused[0]!).info?.reason).toBe("RATE_LIMITED");
    });

    it("concurrency is exact: 12 overlapping calls against a limit of 3 admit 3, and the slots come back", async () => {
      const key = await keyWith({ limits: { concurrentRequests: 3 } });
      const first = split(await parallel(key.client, 12, 400));
      expect(first.ok).toHaveLength(3);
      for (const err of first.refused) {
        const { info, quota } = detailsOf(err);
        expect(info?.reason).toBe("RATE_LIMITED");
        expect(info?.metadata["limit"]).toBe("concurrent_requests");
        expect(quota?.violations[0]?.description).toBe("concurrent requests (limit 3)");
      }
      // Every slot was released when its call ended.
      expect(split(await parallel(key.client, 3, 0)).ok).toHaveLength(3);
    });

    it("a tenant's limit applies on top of its keys': two keys share the tenant's 6 requests per minute", async () => {
      const tenant = `limits-tenant-${randomUUID()}`;
      await server.app.keys.setTenantLimits(tenant, { requestsPerMinute: 6 });
      const a = await keyWith({ tenant, limits: { requestsPerMinute: 100 } });
      const b = await keyWith({ tenant });
      const results = await Promise.all([parallel(a.client, 5, 0), parallel(b.client, 5, 0)]);
      const { ok, refused } = split(results.flat());
      expect(ok).toHaveLength(6);
      for (const err of refused) {
        expect(detailsOf(err).info?.reason).toBe("RATE_LIMITED");
        expect(detailsOf(err).quota?.violations[0]?.subject).toBe(`tenant:${tenant}`);
      }
    });
  });
}

limitsSuite("limits in process (embedded database)", () => ({}));

describeWithPostgres("limits on Postgres", (postgresUrl) => {
  describeWithRedis("and Redis", (redisUrl) => {
    let scratch: { url: string; drop(): Promise<void> } | undefined;
    const env: Record<string, string> = { REDIS_URL: redisUrl };
    beforeAll(async () => {
      scratch = await createScratchDatabase(postgresUrl);
      env["DATABASE_URL"] = scratch.url;
    });
    limitsSuite("limits shared through Redis", () => env);
    // Outer hooks run after the suite's own afterAll, which closes the server first.
    afterAll(async () => {
      await scratch?.drop();
    });
  });
});
