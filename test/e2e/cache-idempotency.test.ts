/**
 * Idempotency keys through the real service, in memory and on Redis: a retried call with the same
 * key gets the first result (same id) without reaching the upstream again.
 */
import { randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Role, type StreamGenerateResponse } from "../../gen/ts/llm/v1/llm_service_pb.js";
import { describeWithRedis } from "../helpers/redis.js";
import { detailsOf, rejection } from "../helpers/rpc-outcomes.js";
import { startUpstreamGateway, type UpstreamGateway } from "../helpers/upstream-gateway.js";

function fresh(model = "up/fast") {
  const marker = `m-${randomUUID()}`;
  return {
    marker,
    idempotencyKey: `idem-${randomUUID()}`,
    req: { model, messages: [{ role: Role.USER, content: `write once about ${marker}` }] },
  };
}

function idempotencySuite(name: string, env: () => Record<string, string>, more?: (gateway: () => UpstreamGateway) => void): void {
  describe(name, () => {
    let gw: UpstreamGateway;
    beforeAll(async () => {
      gw = await startUpstreamGateway(env());
    }, 60_000);
    afterAll(async () => {
      await gw?.close();
    });

    it("the same idempotency_key twice: one upstream call, the same response id and text, the repeat costs nothing", async () => {
      const { client } = await gw.tenantKey();
      const { marker, idempotencyKey, req } = fresh();
      // Not deterministic (no temperature 0): the cache would not answer this, only the idempotency key does.
      const first = await client.generate({ ...req, temperature: 0.9, idempotencyKey });
      let repeatRequestId = "";
      const again = await client.generate(
        { ...req, temperature: 0.9, idempotencyKey },
        { onHeader: (h) => (repeatRequestId = h.get("x-request-id") ?? "") },
      );
      expect(first.cached).toBe(false);
      expect(again).toMatchObject({ id: first.id, text: first.text, cached: true, costUsdNanos: 0n });
      expect(gw.upstreamCalls(marker)).toBe(1);

      // Both calls are in the ledger (the repeat under its own request id), the repeat as cached and free.
      expect(repeatRequestId).not.toBe(first.id);
      await gw.server.app.ledger.flush();
      const rows = await gw.server.app.database.db
        .selectFrom("generations")
        .selectAll()
        .where("request_id", "in", [first.id, repeatRequestId])
        .orderBy("started_at")
        .execute();
      expect(rows.map((r) => [r.request_id, r.cached, r.cost_usd_nanos])).toEqual([
        [first.id, false, String(first.costUsdNanos)],
        [repeatRequestId, true, "0"],
      ]);
    });

    it("duplicates in flight at the same time wait for the first: one upstream call, one id", async () => {
      const { client } = await gw.tenantKey();
      const { marker, idempotencyKey, req } = fresh("up/slow");
      const results = await Promise.all(Array.from({ length: 5 }, () => client.generate({ ...req, idempotencyKey }, { timeoutMs: 10_000 })));
      expect(gw.upstreamCalls(marker)).toBe(1);
      expect(new Set(results.map((r) => r.id)).size).toBe(1);
      expect(results.filter((r) => !r.cached)).toHaveLength(1);
    });

    it("the same key with a different prompt is INVALID_ARGUMENT naming idempotency_key", async () => {
      const { client } = await gw.tenantKey();
      const { marker, idempotencyKey, req } = fresh();
      await client.generate({ ...req, idempotencyKey });
      const err = await rejection(
        client.generate({ ...req, messages: [{ role: Role.USER, content: `something else ${marker}` }], idempotencyKey }),
      );
      expect(err.code).toBe(Code.InvalidArgument);
      const { info, badRequest } = detailsOf(err);
      expect(info?.reason).toBe("INVALID_REQUEST");
      expect(badRequest?.fieldViolations.map((v) => v.field)).toEqual(["idempotency_key"]);
      expect(err.rawMessage).toContain("idempotency_key");
      expect(gw.upstreamCalls(marker)).toBe(1);
    });

    it("keys are per tenant: another tenant's call with the same key runs on its own", async () => {
      const a = await gw.tenantKey();
      const b = await gw.tenantKey();
      const { marker, idempotencyKey, req } = fresh();
      const first = await a.client.generate({ ...req, idempotencyKey });
      const other = await b.client.generate({ ...req, idempotencyKey });
      expect(other.id).not.toBe(first.id);
      expect(other.cached).toBe(false);
      expect(gw.upstreamCalls(marker)).toBe(2);
    });

    it("a first call that failed releases the key: the retry runs, and later repeats get the retry's result", async () => {
      const { client } = await gw.tenantKey();
      const { idempotencyKey, req } = fresh("up/sim");
      // Metadata is not part of the request's identity, so this is the same request as the retries.
      const failed = await rejection(client.generate({ ...req, idempotencyKey, metadata: { "sim-fail": "PROVIDER_REJECTED" } }));
      expect(detailsOf(failed).info?.reason).toBe("PROVIDER_REJECTED");
      const retry = await client.generate({ ...req, idempotencyKey });
      expect(retry.cached).toBe(false);
      const repeat = await client.generate({ ...req, idempotencyKey });
      expect(repeat).toMatchObject({ id: retry.id, text: retry.text, cached: true });
    });

    it("StreamGenerate with a used key replays the first result as a stream with its id", async () => {
      const { client } = await gw.tenantKey();
      const { marker, idempotencyKey, req } = fresh();
      const first = await client.generate({ ...req, idempotencyKey });
      const events: StreamGenerateResponse["event"][] = [];
      for await (const msg of client.streamGenerate({ ...req, idempotencyKey })) events.push(msg.event);
      expect(events[0]).toMatchObject({ case: "started", value: { id: first.id, model: first.model } });
      expect(events.map((e) => (e.case === "delta" ? e.value.text : "")).join("")).toBe(first.text);
      expect(events.at(-1)).toMatchObject({ case: "completed", value: { cached: true, costUsdNanos: 0n } });
      expect(gw.upstreamCalls(marker)).toBe(1);
    });

    more?.(() => gw);
  });
}

idempotencySuite("idempotency keys in memory", () => ({}));
describeWithRedis("idempotency keys on Redis", (redisUrl) => {
  idempotencySuite("idempotency keys shared through Redis", () => ({ REDIS_URL: redisUrl }), (first) => {
    describe("with a second replica on the same Redis", () => {
      let second: UpstreamGateway | undefined;
      beforeAll(async () => {
        second = await startUpstreamGateway({ REDIS_URL: redisUrl });
      }, 60_000);
      afterAll(async () => {
        await second?.close();
      });

      it("a retry that lands on the other replica gets the first result without an upstream call", async () => {
        const a = first();
        const b = second!;
        const onA = await a.tenantKey();
        const onB = await b.keyOf(onA.tenant);
        const { marker, idempotencyKey, req } = fresh();
        const original = await onA.client.generate({ ...req, idempotencyKey });
        const retried = await onB.client.generate({ ...req, idempotencyKey });
        expect(retried).toMatchObject({ id: original.id, text: original.text, cached: true });
        expect(b.upstreamCalls(marker)).toBe(0);
        expect(a.upstreamCalls(marker)).toBe(1);
      });
    });
  });
});
