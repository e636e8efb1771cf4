/**
 * Cached input, cache writes and reasoning tokens through the real service, on the embedded
 * database and on Postgres: the sim provider reports them (metadata knobs), the response
 * carries them, the cost bills each part at its own price (ListModels shows the prices), and
 * GetUsage sums them from the ledger rows.
 */
import { randomUUID } from "node:crypto";
import type { Client } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Role, type LlmService, type Usage } from "../../gen/ts/llm/v1/llm_service_pb.js";
import { llmClient } from "../helpers/clients.js";
import { createScratchDatabase, describeWithPostgres } from "../helpers/postgres.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const DETAIL = { "sim-cached-tokens": "3", "sim-cache-write-tokens": "1", "sim-reasoning-tokens": "2" };
const user = (content: string) => [{ role: Role.USER, content }];

function detailSuite(name: string, env: () => Record<string, string>): void {
  describe(name, () => {
    let server: TestServer;
    let client: Client<typeof LlmService>;
    const tenant = `detail-${randomUUID()}`;

    beforeAll(async () => {
      server = await startTestServer(env());
      const key = await server.app.keys.create({ name: "detail", tenant });
      client = llmClient(server.baseUrl, "grpc", key.secret);
    }, 60_000);

    afterAll(async () => {
      await server?.close();
    });

    it("reports the detail, bills each part of the input at its own price, and GetUsage sums it", async () => {
      const echo = (await client.listModels({})).models.find((m) => m.id === "sim/echo")!;
      // sim/echo: 0.50 USD / M input, 1.50 output; the sim's rates make cached input 0.05 and cache writes 0.625.
      expect(echo.inputPriceUsdNanosPerMillion).toBe(500_000_000n);
      expect(echo.cachedInputPriceUsdNanosPerMillion).toBe(50_000_000n);
      expect(echo.cacheWritePriceUsdNanosPerMillion).toBe(625_000_000n);
      const costOf = (u: Usage) =>
        ((u.inputTokens - u.cachedInputTokens - u.cacheWriteInputTokens) * echo.inputPriceUsdNanosPerMillion +
          u.cachedInputTokens * echo.cachedInputPriceUsdNanosPerMillion +
          u.cacheWriteInputTokens * echo.cacheWritePriceUsdNanosPerMillion +
          u.outputTokens * echo.outputPriceUsdNanosPerMillion +
          500_000n) /
        1_000_000n;

      const unary = await client.generate({ model: "sim/echo", messages: user("alpha beta gamma delta epsilon zeta"), metadata: DETAIL });
      const u = unary.usage!;
      expect({ cached: u.cachedInputTokens, write: u.cacheWriteInputTokens, reasoning: u.reasoningTokens }).toEqual({ cached: 3n, write: 1n, reasoning: 2n });
      expect(u.inputTokens).toBeGreaterThanOrEqual(4n);
      // Reasoning is part of the output (2 hidden tokens on top of the echoed text), not added to the total twice.
      expect(u.outputTokens).toBe(BigInt(unary.text.split(" ").length) + 2n);
      expect(u.totalTokens).toBe(u.inputTokens + u.outputTokens);
      expect(unary.costUsdNanos).toBe(costOf(u));
      const fullPrice = (u.inputTokens * echo.inputPriceUsdNanosPerMillion + u.outputTokens * echo.outputPriceUsdNanosPerMillion + 500_000n) / 1_000_000n;
      expect(unary.costUsdNanos).toBeLessThan(fullPrice);

      let completed: { usage: Usage; cost: bigint } | undefined;
      for await (const msg of client.streamGenerate({ model: "sim/echo", messages: user("one two three four five"), metadata: DETAIL })) {
        if (msg.event.case === "completed") completed = { usage: msg.event.value.usage!, cost: msg.event.value.costUsdNanos };
      }
      expect(completed!.usage).toMatchObject({ cachedInputTokens: 3n, cacheWriteInputTokens: 1n, reasoningTokens: 2n });
      expect(completed!.cost).toBe(costOf(completed!.usage));

      // A call without the detail counts none.
      const plain = await client.generate({ model: "sim/echo", messages: user("no cache here") });
      expect(plain.usage).toMatchObject({ cachedInputTokens: 0n, cacheWriteInputTokens: 0n, reasoningTokens: 0n });

      await server.app.ledger.flush();
      const totals = (await client.getUsage({})).totals!;
      expect(totals.usage).toMatchObject({
        inputTokens: u.inputTokens + completed!.usage.inputTokens + plain.usage!.inputTokens,
        cachedInputTokens: 6n,
        cacheWriteInputTokens: 2n,
        reasoningTokens: 4n,
      });
      expect(totals.costUsdNanos).toBe(unary.costUsdNanos + completed!.cost + plain.costUsdNanos);
    });
  });
}

detailSuite("usage detail on the embedded database", () => ({}));

describeWithPostgres("usage detail on Postgres", (postgresUrl) => {
  let scratch: { url: string; drop(): Promise<void> } | undefined;
  const env: Record<string, string> = {};
  beforeAll(async () => {
    scratch = await createScratchDatabase(postgresUrl);
    env["DATABASE_URL"] = scratch.url;
  });
  detailSuite("usage detail on a Postgres database", () => env);
  afterAll(async () => {
    await scratch?.drop();
  });
});
