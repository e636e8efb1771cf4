/**
 * The response cache through the real service, in memory and on Redis, with the upstream
 * simulator behind it so every test can count the requests that reached the upstream.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CacheMode, Role, type StreamGenerateResponse } from "../../gen/ts/llm/v1/llm_service_pb.js";
import { describeWithRedis } from "../helpers/redis.js";
import { startUpstreamGateway, type UpstreamGateway } from "../helpers/upstream-gateway.js";

/** `more` adds tests that need this suite's gateway (available inside tests and hooks). */
function cacheSuite(name: string, env: () => Record<string, string>, more?: (gateway: () => UpstreamGateway) => void): void {
  describe(name, () => {
    let gw: UpstreamGateway;
    beforeAll(async () => {
      gw = await startUpstreamGateway(env());
    }, 60_000);
    afterAll(async () => {
      await gw?.close();
    });

    /** A prompt no other test (or earlier run) sends, and the marker to count its upstream calls by. */
    function fresh(model = "up/fast") {
      const marker = `m-${randomUUID()}`;
      return { marker, req: { model, messages: [{ role: Role.USER, content: `tell me about ${marker}` }] } };
    }

    async function ledgerRow(requestId: string) {
      await gw.server.app.ledger.flush();
      return gw.server.app.database.db.selectFrom("generations").selectAll().where("request_id", "=", requestId).executeTakeFirstOrThrow();
    }

    it("temperature 0: the second identical call is answered from the cache, costs nothing, and the upstream saw one request", async () => {
      const { client } = await gw.tenantKey();
      const { marker, req } = fresh();
      const first = await client.generate({ ...req, temperature: 0 });
      expect(first.cached).toBe(false);
      expect(first.costUsdNanos).toBeGreaterThan(0n);
      const second = await client.generate({ ...req, temperature: 0 });
      expect(second).toMatchObject({ cached: true, costUsdNanos: 0n, text: first.text, model: "up/fast", provider: "openai" });
      expect(second.usage).toEqual(first.usage);
      expect(second.id).not.toBe(first.id);
      expect(gw.upstreamCalls(marker)).toBe(1);

      // Recorded as cached, at no cost.
      const row = await ledgerRow(second.id);
      expect(row).toMatchObject({ status: "ok", cached: true, cost_usd_nanos: "0" });
    });

    it("the default policy caches deterministic requests only: a seed does, a temperature above 0 does not", async () => {
      const { client } = await gw.tenantKey();
      const seeded = fresh();
      await client.generate({ ...seeded.req, seed: 7n });
      expect((await client.generate({ ...seeded.req, seed: 7n })).cached).toBe(true);
      // Another seed is another request.
      expect((await client.generate({ ...seeded.req, seed: 8n })).cached).toBe(false);
      expect(gw.upstreamCalls(seeded.marker)).toBe(2);

      const sampled = fresh();
      await client.generate({ ...sampled.req, temperature: 0.7 });
      expect((await client.generate({ ...sampled.req, temperature: 0.7 })).cached).toBe(false);
      expect(gw.upstreamCalls(sampled.marker)).toBe(2);
    });

    it("bypass reaches the upstream again; force caches what default would not; refresh replaces the entry", async () => {
      const { client } = await gw.tenantKey();
      const { marker, req } = fresh();
      const det = { ...req, temperature: 0 };
      await client.generate(det);
      const bypassed = await client.generate({ ...det, cache: { mode: CacheMode.BYPASS } });
      expect(bypassed.cached).toBe(false);
      expect(gw.upstreamCalls(marker)).toBe(2);
      const refreshed = await client.generate({ ...det, cache: { mode: CacheMode.REFRESH } });
      expect(refreshed.cached).toBe(false);
      expect(gw.upstreamCalls(marker)).toBe(3);
      expect((await client.generate(det)).cached).toBe(true);
      expect(gw.upstreamCalls(marker)).toBe(3);

      const forced = fresh();
      const warm = { ...forced.req, temperature: 1, cache: { mode: CacheMode.FORCE } };
      await client.generate(warm);
      expect((await client.generate(warm)).cached).toBe(true);
      expect(gw.upstreamCalls(forced.marker)).toBe(1);
    });

    it("an entry with ttl_seconds 1 expires: after it, the upstream is called again", async () => {
      const { client } = await gw.tenantKey();
      const { marker, req } = fresh();
      const short = { ...req, temperature: 0, cache: { ttlSeconds: 1 } };
      await client.generate(short);
      const writtenAt = Date.now();
      expect((await client.generate(short)).cached).toBe(true);
      // The one wait on a clock in this file: the TTL is the behaviour under test.
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, writtenAt + 1_150 - Date.now())));
      const after = await client.generate(short);
      expect(after.cached).toBe(false);
      expect(gw.upstreamCalls(marker)).toBe(2);
    });

    it("never crosses tenants: the same prompt from another tenant's key misses, from the same tenant's other key hits", async () => {
      const a = await gw.tenantKey();
      const b = await gw.tenantKey();
      const a2 = await gw.keyOf(a.tenant);
      const { marker, req } = fresh();
      const det = { ...req, temperature: 0 };
      await a.client.generate(det);
      const other = await b.client.generate(det);
      expect(other.cached).toBe(false);
      expect(gw.upstreamCalls(marker)).toBe(2);
      expect((await a2.client.generate(det)).cached).toBe(true);
      expect(gw.upstreamCalls(marker)).toBe(2);
    });

    it("StreamGenerate replays a cached answer as started, deltas and completed with cached = true", async () => {
      const { client } = await gw.tenantKey();
      const { marker, req } = fresh();
      const det = { ...req, temperature: 0 };
      const first = await client.generate(det);
      const events: StreamGenerateResponse["event"][] = [];
      for await (const msg of client.streamGenerate(det)) events.push(msg.event);

      const [started, ...rest] = events;
      const completed = rest.pop();
      if (started?.case !== "started" || completed?.case !== "completed") throw new Error(`unexpected events: ${JSON.stringify(events)}`);
      expect(started.value).toMatchObject({ model: "up/fast", provider: "openai" });
      expect(started.value.id).not.toBe(first.id);
      expect(rest.every((e) => e.case === "delta")).toBe(true);
      expect(rest.length).toBeGreaterThan(1);
      expect(rest.map((e) => (e.case === "delta" ? e.value.text : "")).join("")).toBe(first.text);
      expect(completed.value).toMatchObject({ cached: true, costUsdNanos: 0n, finishReason: first.finishReason });
      expect(completed.value.usage).toEqual(first.usage);
      expect(gw.upstreamCalls(marker)).toBe(1);
      expect(await ledgerRow(started.value.id)).toMatchObject({ cached: true, cost_usd_nanos: "0" });
    });

    it("a streamed miss fills the cache for the next call", async () => {
      const { client } = await gw.tenantKey();
      const { marker, req } = fresh();
      const det = { ...req, temperature: 0 };
      let text = "";
      for await (const msg of client.streamGenerate(det)) if (msg.event.case === "delta") text += msg.event.value.text;
      const next = await client.generate(det);
      expect(next).toMatchObject({ cached: true, text });
      expect(gw.upstreamCalls(marker)).toBe(1);
    });

    it("100 concurrent identical misses make one upstream call and all get the same text", async () => {
      const { id: keyId, client } = await gw.tenantKey();
      const { marker, req } = fresh("up/slow");
      const results = await Promise.all(Array.from({ length: 100 }, () => client.generate({ ...req, temperature: 0 }, { timeoutMs: 15_000 })));
      expect(gw.upstreamCalls(marker)).toBe(1);
      expect(new Set(results.map((r) => r.text)).size).toBe(1);
      expect(results[0]!.text.length).toBeGreaterThan(0);
      // One call paid for the answer; the 99 others shared it and cost nothing.
      const paid = results.filter((r) => !r.cached);
      expect(paid).toHaveLength(1);
      expect(paid[0]!.costUsdNanos).toBeGreaterThan(0n);
      expect(results.filter((r) => r.cached && r.costUsdNanos === 0n)).toHaveLength(99);

      await gw.server.app.ledger.flush();
      const rows = await gw.server.app.database.db.selectFrom("generations").selectAll().where("key_id", "=", keyId).execute();
      expect(rows).toHaveLength(100);
      expect(rows.filter((r) => r.cached)).toHaveLength(99);
      expect(rows.reduce((sum, r) => sum + BigInt(r.cost_usd_nanos), 0n)).toBe(paid[0]!.costUsdNanos);
    });

    more?.(() => gw);
  });
}

cacheSuite("response cache in memory", () => ({}));
describeWithRedis("response cache on Redis", (redisUrl) => {
  cacheSuite("response cache shared through Redis", () => ({ REDIS_URL: redisUrl }), (first) => {
    describe("with a second replica on the same Redis", () => {
      let second: UpstreamGateway | undefined;
      beforeAll(async () => {
        second = await startUpstreamGateway({ REDIS_URL: redisUrl });
      }, 60_000);
      afterAll(async () => {
        await second?.close();
      });

      it("an answer cached by one replica is a hit on the other, for the same tenant only", async () => {
        const a = first();
        const b = second!;
        const onA = await a.tenantKey();
        const onB = await b.keyOf(onA.tenant);
        const stranger = await b.tenantKey();
        const marker = `m-${randomUUID()}`;
        const req = { model: "up/fast", messages: [{ role: Role.USER, content: `shared ${marker}` }], temperature: 0 };
        const answer = await onA.client.generate(req);
        const hit = await onB.client.generate(req);
        expect(hit).toMatchObject({ cached: true, costUsdNanos: 0n, text: answer.text });
        expect(a.upstreamCalls(marker) + b.upstreamCalls(marker)).toBe(1);
        expect((await stranger.client.generate(req)).cached).toBe(false);
        expect(b.upstreamCalls(marker)).toBe(1);
      });
    });
  });
});
