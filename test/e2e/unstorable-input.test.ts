/**
 * Text the ledger cannot store (U+0000 anywhere, an unpaired surrogate in jsonb): a call carrying it
 * fails up front with INVALID_ARGUMENT and a BadRequest naming the field, and its ledger row is
 * still written, never served and then lost to a refused INSERT. GetUsage with such a tenant, or a
 * time outside google.protobuf.Timestamp's range, is INVALID_ARGUMENT too, never INTERNAL.
 * Over real sockets, on the embedded database and on Postgres.
 */
import { randomUUID } from "node:crypto";
import { Code, type Client } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Role, type LlmService } from "../../gen/ts/llm/v1/llm_service_pb.js";
import { llmClient, type ProtocolName } from "../helpers/clients.js";
import { createScratchDatabase, describeWithPostgres } from "../helpers/postgres.js";
import { detailsOf, rejection } from "../helpers/rpc-outcomes.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const user = (content: string) => [{ role: Role.USER, content }];

function unstorableSuite(name: string, env: () => Record<string, string>): void {
  describe(name, () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startTestServer(env());
    }, 60_000);
    afterAll(async () => {
      await server?.close();
    });

    const client = (protocol: ProtocolName, key = server.key): Client<typeof LlmService> => llmClient(server.baseUrl, protocol, key);

    /** The ledger row of the call that sent this x-request-id. */
    async function rowOf(clientRequestId: string) {
      await server.app.ledger.flush();
      return server.app.database.db
        .selectFrom("generations")
        .select(["status", "error_reason", "model", "metadata"])
        .where("client_request_id", "=", clientRequestId)
        .execute();
    }

    it.each([
      ["a NUL in a metadata value", "grpc", { metadata: { team: "a\u0000b" } }, 'metadata["team"]'],
      ["a NUL in a metadata key", "grpc", { metadata: { "t\u0000m": "x" } }, 'metadata["t\\u0000m"]'],
      ["a NUL in the model name", "grpc", { model: "sim/echo\u0000" }, "model"],
      ["a NUL in a fallback model", "connect-h1", { fallbackModels: ["sim/\u0000"] as string[] }, "fallback_models[0]"],
      ["a NUL in the idempotency key", "grpc", { idempotencyKey: "k\u0000" }, "idempotency_key"],
    ] as const)("%s is INVALID_ARGUMENT naming the field, and the call is still recorded", async (_what, protocol, extra, field) => {
      const correlation = `unstorable-${randomUUID()}`;
      const droppedBefore = server.app.ledger.dropped;
      const err = await rejection(
        client(protocol).generate({ model: "sim/echo", messages: user("hello"), ...extra }, { headers: { "x-request-id": correlation } }),
      );
      expect(err.code).toBe(Code.InvalidArgument);
      const { info, badRequest } = detailsOf(err);
      expect(info?.reason).toBe("INVALID_REQUEST");
      expect(badRequest?.fieldViolations.map((v) => v.field)).toEqual([field]);

      const rows = await rowOf(correlation);
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ status: "failed", error_reason: "INVALID_REQUEST" });
      expect(JSON.stringify(rows[0])).not.toMatch(/\\u0000|\\ud800/);
      expect(server.app.ledger.dropped).toBe(droppedBefore);
    });

    it("an unpaired surrogate sent as Connect JSON is refused before it is served", async () => {
      await server.app.ledger.flush();
      const before = await server.app.database.db.selectFrom("generations").select((eb) => eb.fn.countAll<string>().as("n")).executeTakeFirstOrThrow();
      const res = await fetch(`${server.baseUrl}/llm.v1.LlmService/Generate`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${server.key}` },
        body: '{"model":"sim/echo","messages":[{"role":"ROLE_USER","content":"hi"}],"metadata":{"team":"a\\ud800b"}}',
      });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { code: string }).code).toBe("invalid_argument");
      await server.app.ledger.flush();
      const after = await server.app.database.db.selectFrom("generations").select((eb) => eb.fn.countAll<string>().as("n")).executeTakeFirstOrThrow();
      expect(Number(after.n)).toBe(Number(before.n));
    });

    it("a batch item with a NUL fails alone, naming its field, and is recorded", async () => {
      const correlation = `unstorable-batch-${randomUUID()}`;
      const res = await client("grpc").batchGenerate(
        {
          requests: [
            { model: "sim/echo", messages: user("fine") },
            { model: "sim/echo", messages: user("bad"), metadata: { team: "\u0000" } },
          ],
        },
        { headers: { "x-request-id": correlation } },
      );
      expect(res.results[0]?.result.case).toBe("response");
      const failed = res.results[1]?.result;
      expect(failed?.case).toBe("error");
      expect(failed?.case === "error" ? failed.value.code : undefined).toBe(Code.InvalidArgument);
      const rows = await rowOf(correlation);
      expect(rows.map((r) => r.status).sort()).toEqual(["failed", "ok"]);
    });

    it("GetUsage with a NUL in the tenant filter is INVALID_ARGUMENT naming tenant", async () => {
      for (const protocol of ["grpc", "connect-h1"] as const) {
        const err = await rejection(client(protocol, server.adminKey).getUsage({ tenant: "acme\u0000" }));
        expect(err.code).toBe(Code.InvalidArgument);
        expect(detailsOf(err).badRequest?.fieldViolations.map((v) => v.field)).toEqual(["tenant"]);
      }
    });

    it.each([
      ["past year 9999", { endTime: { seconds: 253_402_300_800n, nanos: 0 } }, "end_time"],
      ["past what a JS Date holds", { endTime: { seconds: 10n ** 13n, nanos: 0 } }, "end_time"],
      ["before year 1", { startTime: { seconds: -62_135_596_801n, nanos: 0 } }, "start_time"],
      ["before what Postgres holds", { startTime: { seconds: -300_000_000_000n, nanos: 0 } }, "start_time"],
      ["with nanos out of range", { startTime: { seconds: 1_700_000_000n, nanos: 1_000_000_000 } }, "start_time"],
    ] as const)("GetUsage with a time %s is INVALID_ARGUMENT naming it", async (_what, range, field) => {
      for (const protocol of ["grpc", "connect-h1"] as const) {
        const err = await rejection(client(protocol).getUsage(range));
        expect(err.code, protocol).toBe(Code.InvalidArgument);
        expect(detailsOf(err).badRequest?.fieldViolations.map((v) => v.field)).toEqual([field]);
      }
    });

    it("GetUsage at the edges of the range still answers", async () => {
      const report = await client("grpc").getUsage({
        startTime: { seconds: 253_402_300_799n - 86_400n, nanos: 0 },
        endTime: { seconds: 253_402_300_799n, nanos: 999_999_999 },
      });
      expect(report.totals?.requests).toBe(0n);
    });
  });
}

unstorableSuite("unstorable input on the embedded database", () => ({}));

describeWithPostgres("unstorable input on Postgres", (postgresUrl) => {
  let scratch: { url: string; drop(): Promise<void> } | undefined;
  const env: Record<string, string> = {};
  beforeAll(async () => {
    scratch = await createScratchDatabase(postgresUrl);
    env["DATABASE_URL"] = scratch.url;
  });
  unstorableSuite("unstorable input on a Postgres database", () => env);
  afterAll(async () => {
    await scratch?.drop();
  });
});
