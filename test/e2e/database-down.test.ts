/**
 * The database really unreachable while the service runs: a key the service has not cached cannot
 * be checked, and GetUsage cannot read the ledger. Both answer UNAVAILABLE with a RetryInfo and
 * reason DATABASE_UNAVAILABLE (never INTERNAL), while a key checked before the outage keeps working.
 * Over real sockets, with PGlite closed under the service and with Postgres behind a TCP relay
 * that is shut (new connections refused, open ones reset).
 */
import net from "node:net";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Role } from "../../gen/ts/llm/v1/llm_service_pb.js";
import { llmClient } from "../helpers/clients.js";
import { createScratchDatabase, describeWithPostgres } from "../helpers/postgres.js";
import { detailsOf, rejection } from "../helpers/rpc-outcomes.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const ask = { model: "sim/echo", messages: [{ role: Role.USER, content: "hello" }] };

function databaseDownSuite(name: string, env: () => Record<string, string>, takeDown: (server: TestServer) => Promise<void>): void {
  describe(name, () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startTestServer(env());
      // The admin key is checked (and so cached) before the outage; server.key never is.
      await llmClient(server.baseUrl, "grpc", server.adminKey).listModels({});
      await takeDown(server);
    }, 60_000);
    afterAll(async () => {
      // The ledger cannot write its last rows to a database that is gone: they are spooled, not our concern here.
      await server?.close().catch(() => undefined);
    });

    it.each(["grpc", "connect-h1"] as const)("a key not yet cached is UNAVAILABLE with RetryInfo, not INTERNAL (%s)", async (protocol) => {
      const err = await rejection(llmClient(server.baseUrl, protocol, server.key).generate(ask, { headers: { "x-request-id": "db-down-1" } }));
      expect(err.code).toBe(Code.Unavailable);
      const { info, retry } = detailsOf(err);
      expect(info?.reason).toBe("DATABASE_UNAVAILABLE");
      expect(info?.metadata["request_id"]).toMatch(/^[0-9a-f-]{36}$/);
      expect(info?.metadata["client_request_id"]).toBe("db-down-1");
      expect(Number(retry?.retryDelay?.seconds ?? 0n) * 1000 + (retry?.retryDelay?.nanos ?? 0) / 1e6).toBeGreaterThan(0);
      // The message says what happened, and nothing of the driver's error.
      expect(err.rawMessage).toMatch(/database is unavailable/);
    });

    it("a key checked before the outage is still served", async () => {
      const res = await llmClient(server.baseUrl, "grpc", server.adminKey).generate(ask);
      expect(res.text).toBe("hello");
    });

    it.each(["grpc", "connect-h1"] as const)("GetUsage is UNAVAILABLE with RetryInfo (%s)", async (protocol) => {
      const err = await rejection(llmClient(server.baseUrl, protocol, server.adminKey).getUsage({}));
      expect(err.code).toBe(Code.Unavailable);
      expect(detailsOf(err).info?.reason).toBe("DATABASE_UNAVAILABLE");
      expect(detailsOf(err).retry).toBeDefined();
    });
  });
}

databaseDownSuite("the embedded database closed under the service", () => ({}), (server) => server.app.database.close());

/** A TCP relay to Postgres that can be shut: new connections are refused and open ones reset. */
async function startRelay(target: URL): Promise<{ port: number; shut(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const relay = net.createServer((client) => {
    const upstream = net.connect(Number(target.port || 5432), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => undefined);
    }
    client.pipe(upstream).pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((done) => relay.listen(0, "127.0.0.1", done));
  const port = (relay.address() as net.AddressInfo).port;
  return {
    port,
    async shut() {
      const closed = new Promise<void>((done) => relay.close(() => done()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}

describeWithPostgres("Postgres unreachable under the service", (postgresUrl) => {
  let scratch: { url: string; drop(): Promise<void> } | undefined;
  let relay: { port: number; shut(): Promise<void> } | undefined;
  const env: Record<string, string> = {};
  beforeAll(async () => {
    scratch = await createScratchDatabase(postgresUrl);
    const url = new URL(scratch.url);
    relay = await startRelay(new URL(scratch.url));
    url.hostname = "127.0.0.1";
    url.port = String(relay.port);
    env["DATABASE_URL"] = url.toString();
  });
  databaseDownSuite("Postgres behind a relay that is shut", () => env, async () => relay!.shut());
  afterAll(async () => {
    await scratch?.drop();
  });
});
