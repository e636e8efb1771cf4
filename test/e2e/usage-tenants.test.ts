/**
 * GetUsage through the real service, on the embedded database and on Postgres: its numbers equal a
 * count the test makes itself from its own calls' responses, and a key of one tenant cannot read
 * another tenant's usage through any parameter, while an admin key can.
 */
import { randomUUID } from "node:crypto";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, type Client } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Role, type GetUsageResponse, type LlmService, type UsageTotals } from "../../gen/ts/llm/v1/llm_service_pb.js";
import { llmClient } from "../helpers/clients.js";
import { createScratchDatabase, describeWithPostgres } from "../helpers/postgres.js";
import { detailsOf, rejection } from "../helpers/rpc-outcomes.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/** One call as the test saw it, in the ledger's terms. */
interface Seen {
  keyId: string;
  model: string;
  day: string;
  ok: boolean;
  cached: boolean;
  input: bigint;
  output: bigint;
  cost: bigint;
}

interface Totals {
  requests: bigint;
  succeeded: bigint;
  failed: bigint;
  cached: bigint;
  input: bigint;
  output: bigint;
  total: bigint;
  cost: bigint;
}

function sum(calls: readonly Seen[]): Totals {
  const t: Totals = { requests: 0n, succeeded: 0n, failed: 0n, cached: 0n, input: 0n, output: 0n, total: 0n, cost: 0n };
  for (const c of calls) {
    t.requests++;
    if (c.ok) t.succeeded++;
    else t.failed++;
    if (c.cached) t.cached++;
    t.input += c.input;
    t.output += c.output;
    t.total += c.input + c.output;
    t.cost += c.cost;
  }
  return t;
}

function fromProto(t: UsageTotals | undefined): Totals {
  return {
    requests: t?.requests ?? -1n,
    succeeded: t?.succeeded ?? -1n,
    failed: t?.failed ?? -1n,
    cached: t?.cached ?? -1n,
    input: t?.usage?.inputTokens ?? -1n,
    output: t?.usage?.outputTokens ?? -1n,
    total: t?.usage?.totalTokens ?? -1n,
    cost: t?.costUsdNanos ?? -1n,
  };
}

function groupBy(calls: readonly Seen[], by: (c: Seen) => string): [string, Totals][] {
  const groups = new Map<string, Seen[]>();
  for (const c of calls) groups.set(by(c), [...(groups.get(by(c)) ?? []), c]);
  return [...groups.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => [k, sum(v)]);
}

/** The report the test expects from its own count, in the shape of a GetUsageResponse. */
function expectedReport(tenant: string, calls: readonly Seen[], keyNames: ReadonlyMap<string, string>) {
  return {
    tenant,
    totals: sum(calls),
    byModel: groupBy(calls, (c) => c.model),
    byKey: groupBy(calls, (c) => c.keyId).map(([id, t]) => [id, keyNames.get(id) ?? "?", t]),
    byDay: groupBy(calls, (c) => c.day),
  };
}

function actualReport(r: GetUsageResponse) {
  return {
    tenant: r.tenant,
    totals: fromProto(r.totals),
    byModel: r.byModel.map((m) => [m.model, fromProto(m.totals)]),
    byKey: r.byKey.map((k) => [k.keyId, k.keyName, fromProto(k.totals)]),
    byDay: r.byDay.map((d) => [d.day, fromProto(d.totals)]),
  };
}

const today = () => new Date().toISOString().slice(0, 10);
const user = (content: string) => [{ role: Role.USER, content }];

function usageSuite(name: string, env: () => Record<string, string>): void {
  describe(name, () => {
    let server: TestServer;
    const tenantA = `usage-a-${randomUUID()}`;
    const tenantB = `usage-b-${randomUUID()}`;
    const seenA: Seen[] = [];
    const seenB: Seen[] = [];
    const keyNames = new Map<string, string>();
    let clientA: Client<typeof LlmService>;
    let clientB: Client<typeof LlmService>;
    let admin: Client<typeof LlmService>;

    beforeAll(async () => {
      server = await startTestServer(env());
      admin = llmClient(server.baseUrl, "grpc", server.adminKey);
      const prices = new Map(
        (await admin.listModels({})).models.map((m) => [m.id, { input: m.inputPriceUsdNanosPerMillion, output: m.outputPriceUsdNanosPerMillion }]),
      );
      /** What a failed call that reached the upstream is charged: its prompt and the tokens it delivered (catalogue prices). */
      const chargeOf = (model: string, input: bigint, output: bigint) => {
        const p = prices.get(model)!;
        return (input * p.input + output * p.output + 500_000n) / 1_000_000n;
      };
      const newKey = async (keyName: string, tenant: string, extra: object = {}) => {
        const key = await server.app.keys.create({ name: keyName, tenant, ...extra });
        keyNames.set(key.id, keyName);
        return { id: key.id, client: llmClient(server.baseUrl, "grpc", key.secret) };
      };
      const a1 = await newKey("a-one", tenantA, { limits: { requestsPerMinute: 6 } });
      const a2 = await newKey("a-two", tenantA);
      const a3 = await newKey("a-echo-only", tenantA, { allowedModels: ["sim/echo"] });
      const b1 = await newKey("b-one", tenantB);
      clientA = a1.client;
      clientB = b1.client;

      /** A successful unary call, counted from its response. */
      const ok = async (into: Seen[], key: { id: string; client: Client<typeof LlmService> }, req: Parameters<Client<typeof LlmService>["generate"]>[0]) => {
        const res = await key.client.generate(req);
        into.push({
          keyId: key.id,
          model: res.model,
          day: today(),
          ok: true,
          cached: res.cached,
          input: res.usage!.inputTokens,
          output: res.usage!.outputTokens,
          cost: res.costUsdNanos,
        });
        return res;
      };

      // Tenant A, key a-one (6 requests per minute): plain calls, a cache hit, a stream, then a refusal.
      const p1 = await ok(seenA, a1, { model: "sim/echo", messages: user("first prompt of tenant a") });
      await ok(seenA, a1, { model: "sim/echo", messages: user("second prompt, a bit longer than the first") });
      const lorem = await ok(seenA, a1, { model: "sim/lorem", messages: user("tell a story"), temperature: 0 });
      expect((await ok(seenA, a1, { model: "sim/lorem", messages: user("tell a story"), temperature: 0 })).cached).toBe(true);
      await ok(seenA, a1, { model: "lorem", messages: user("an alias counts under its model"), maxOutputTokens: 5 });
      let completed: { input: bigint; output: bigint; cost: bigint } | undefined;
      for await (const msg of a1.client.streamGenerate({ model: "sim/echo", messages: user("first prompt of tenant a") })) {
        if (msg.event.case === "completed") {
          const u = msg.event.value.usage!;
          completed = { input: u.inputTokens, output: u.outputTokens, cost: msg.event.value.costUsdNanos };
        }
      }
      seenA.push({ keyId: a1.id, model: "sim/echo", day: today(), ok: true, cached: false, ...completed! });
      // The seventh call in the minute is refused before the upstream: its prompt is counted, nothing is charged.
      const refused = await rejection(a1.client.generate({ model: "sim/echo", messages: user("first prompt of tenant a") }));
      expect(detailsOf(refused).info?.reason).toBe("RATE_LIMITED");
      seenA.push({ keyId: a1.id, model: "sim/echo", day: today(), ok: false, cached: false, input: p1.usage!.inputTokens, output: 0n, cost: 0n });

      // Key a-two: an upstream failure before any token, a stream cut after three, an idempotent repeat, a batch.
      const rejected = await rejection(
        a2.client.generate({ model: "sim/echo", messages: user("first prompt of tenant a"), metadata: { "sim-fail": "PROVIDER_REJECTED" } }),
      );
      expect(detailsOf(rejected).info?.reason).toBe("PROVIDER_REJECTED");
      const p1Input = p1.usage!.inputTokens;
      seenA.push({ keyId: a2.id, model: "sim/echo", day: today(), ok: false, cached: false, input: p1Input, output: 0n, cost: chargeOf("sim/echo", p1Input, 0n) });
      let delivered = 0n;
      const cut = await rejection(
        (async () => {
          const stream = a2.client.streamGenerate({
            model: "sim/lorem",
            messages: user("tell a story"),
            metadata: { "sim-fail": "PROVIDER_UNAVAILABLE", "sim-fail-after": "3" },
          });
          for await (const msg of stream) if (msg.event.case === "delta") delivered++;
        })(),
      );
      expect(cut.code).toBe(Code.Unavailable);
      expect(delivered).toBe(3n);
      const loremInput = lorem.usage!.inputTokens;
      seenA.push({ keyId: a2.id, model: "sim/lorem", day: today(), ok: false, cached: false, input: loremInput, output: 3n, cost: chargeOf("sim/lorem", loremInput, 3n) });
      const idempotencyKey = `usage-${randomUUID()}`;
      await ok(seenA, a2, { model: "sim/echo", messages: user("exactly once"), idempotencyKey });
      expect((await ok(seenA, a2, { model: "sim/echo", messages: user("exactly once"), idempotencyKey })).cached).toBe(true);
      const batch = await a2.client.batchGenerate({
        requests: [
          { model: "sim/echo", messages: user("batch item one") },
          { model: "sim/lorem", messages: user("batch item two") },
        ],
      });
      for (const item of batch.results) {
        if (item.result.case !== "response") throw new Error(`batch item ${item.index} failed`);
        const res = item.result.value;
        seenA.push({ keyId: a2.id, model: res.model, day: today(), ok: true, cached: res.cached, input: res.usage!.inputTokens, output: res.usage!.outputTokens, cost: res.costUsdNanos });
      }

      // Key a-echo-only asks for a model it may not use: a row under the model it named, no tokens, no cost.
      const denied = await rejection(a3.client.generate({ model: "sim/lorem", messages: user("not for me") }));
      expect(detailsOf(denied).info?.reason).toBe("MODEL_NOT_ALLOWED");
      seenA.push({ keyId: a3.id, model: "sim/lorem", day: today(), ok: false, cached: false, input: 0n, output: 0n, cost: 0n });

      // Tenant B: the same prompts, so only the tenant tells them apart.
      await ok(seenB, b1, { model: "sim/echo", messages: user("first prompt of tenant a") });
      await ok(seenB, b1, { model: "sim/lorem", messages: user("tell a story"), temperature: 0 });
      await ok(seenB, b1, { model: "sim/echo", messages: user("only tenant b says this") });

      await server.app.ledger.flush();
    }, 60_000);

    afterAll(async () => {
      await server?.close();
    });

    it("GetUsage totals and breakdowns by model, key and day equal the test's own count", async () => {
      expect(seenA.length).toBe(14);
      const expected = expectedReport(tenantA, seenA, keyNames);
      expect(actualReport(await clientA.getUsage({}))).toEqual(expected);
      expect(actualReport(await clientA.getUsage({ tenant: tenantA }))).toEqual(expected);
      expect(actualReport(await clientB.getUsage({}))).toEqual(expectedReport(tenantB, seenB, keyNames));
    });

    it("a key of tenant A cannot read tenant B's usage through the tenant field, with or without a time range", async () => {
      const wide = { startTime: timestampFromDate(new Date(Date.now() - 399 * 86_400_000)), endTime: timestampFromDate(new Date(Date.now() + 86_400_000)) };
      const others = [tenantB, tenantB.toUpperCase(), ` ${tenantB}`, `${tenantB} `, `${tenantB}\u0000`, "%", "*", `${tenantA}%`, "ops"];
      for (const tenant of others) {
        for (const range of [{}, wide]) {
          const err = await rejection(clientA.getUsage({ tenant, ...range }));
          expect(err.code, `tenant ${JSON.stringify(tenant)}`).toBe(Code.PermissionDenied);
          expect(detailsOf(err).info?.reason).toBe("TENANT_NOT_ALLOWED");
        }
      }
      expect((await rejection(clientB.getUsage({ tenant: tenantA }))).code).toBe(Code.PermissionDenied);
    });

    it("time ranges only narrow a key's view of its own tenant", async () => {
      const now = Date.now();
      const wide = await clientA.getUsage({
        startTime: timestampFromDate(new Date(now - 399 * 86_400_000)),
        endTime: timestampFromDate(new Date(now + 86_400_000)),
      });
      expect(actualReport(wide)).toEqual(expectedReport(tenantA, seenA, keyNames));
      expect(wide.byKey.every((k) => keyNames.has(k.keyId) && !seenB.some((s) => s.keyId === k.keyId))).toBe(true);

      const future = await clientA.getUsage({ startTime: timestampFromDate(new Date(now + 86_400_000)), endTime: timestampFromDate(new Date(now + 2 * 86_400_000)) });
      expect(future.tenant).toBe(tenantA);
      expect(future.totals?.requests).toBe(0n);
      expect(future.byKey).toEqual([]);

      const tooLong = await rejection(clientA.getUsage({ startTime: timestampFromDate(new Date(now - 401 * 86_400_000)) }));
      expect(tooLong.code).toBe(Code.InvalidArgument);
      const backwards = await rejection(clientA.getUsage({ startTime: timestampFromDate(new Date(now)), endTime: timestampFromDate(new Date(now - 1000)) }));
      expect(detailsOf(backwards).badRequest?.fieldViolations[0]?.field).toBe("start_time");
    });

    it("an admin key reads any tenant's usage, and its own tenant's by default", async () => {
      expect(actualReport(await admin.getUsage({ tenant: tenantA }))).toEqual(expectedReport(tenantA, seenA, keyNames));
      expect(actualReport(await admin.getUsage({ tenant: tenantB }))).toEqual(expectedReport(tenantB, seenB, keyNames));
      const own = await admin.getUsage({});
      expect(own.tenant).toBe("ops");
      expect(own.byKey.some((k) => keyNames.has(k.keyId))).toBe(false);
    });
  });
}

usageSuite("usage on the embedded database", () => ({}));

describeWithPostgres("usage on Postgres", (postgresUrl) => {
  let scratch: { url: string; drop(): Promise<void> } | undefined;
  const env: Record<string, string> = {};
  beforeAll(async () => {
    scratch = await createScratchDatabase(postgresUrl);
    env["DATABASE_URL"] = scratch.url;
  });
  usageSuite("usage on a Postgres database", () => env);
  // Outer hooks run after the suite's own afterAll, which closes the server first.
  afterAll(async () => {
    await scratch?.drop();
  });
});

describe("GetUsage right after a call", () => {
  let server: TestServer | undefined;
  afterAll(async () => {
    await server?.close();
  });

  it("counts the caller's own finished calls without waiting for the ledger's next flush", async () => {
    // A flush a minute away: only GetUsage itself can have written the rows it reports.
    server = await startTestServer({ LEDGER_FLUSH_MS: "60000" });
    const key = await server.app.keys.create({ name: "read-own-writes", tenant: `usage-now-${randomUUID()}` });
    const client = llmClient(server.baseUrl, "connect-h1", key.secret);
    const res = await client.generate({ model: "sim/echo", messages: user("count me now") });
    const usage = await client.getUsage({});
    expect(usage.totals?.requests).toBe(1n);
    expect(usage.totals?.usage?.totalTokens).toBe(res.usage?.totalTokens);
  }, 60_000);
});
