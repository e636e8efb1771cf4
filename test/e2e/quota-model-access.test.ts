/** A key's allowed models through the real service: PERMISSION_DENIED for the others, and ListModels shows only its own. */
import { randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Role } from "../../gen/ts/llm/v1/llm_service_pb.js";
import { llmClient, PROTOCOLS } from "../helpers/clients.js";
import { detailsOf, rejection } from "../helpers/rpc-outcomes.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
}, 60_000);
afterAll(async () => {
  await server?.close();
});

const ask = (model: string, extra: object = {}) => ({ model, messages: [{ role: Role.USER, content: "which models may I use" }], ...extra });

describe.each(PROTOCOLS)("a key allowed only sim/echo, over %s", (protocol) => {
  let secret: string;
  beforeAll(async () => {
    secret = (await server.app.keys.create({ name: "echo only", tenant: `access-${randomUUID()}`, allowedModels: ["sim/echo"] })).secret;
  });

  it("may call sim/echo by id and by alias", async () => {
    const client = llmClient(server.baseUrl, protocol, secret);
    expect((await client.generate(ask("sim/echo"))).model).toBe("sim/echo");
    expect((await client.generate(ask("echo"))).model).toBe("sim/echo");
  });

  it("gets PERMISSION_DENIED with MODEL_NOT_ALLOWED for sim/lorem, by id, alias, as a fallback and streamed", async () => {
    const client = llmClient(server.baseUrl, protocol, secret);
    const attempts = [
      () => client.generate(ask("sim/lorem")),
      () => client.generate(ask("lorem")),
      () => client.generate(ask("sim/echo", { fallbackModels: ["sim/lorem"] })),
      async () => {
        for await (const _ of client.streamGenerate(ask("sim/lorem"))) throw new Error("a denied stream sent an event");
      },
    ];
    for (const attempt of attempts) {
      const err = await rejection(attempt());
      expect(err.code).toBe(Code.PermissionDenied);
      const { info } = detailsOf(err);
      expect(info?.reason).toBe("MODEL_NOT_ALLOWED");
      expect(info?.metadata["model"]).toBe("sim/lorem");
    }
  });

  it("gets PERMISSION_DENIED with MODEL_NOT_ALLOWED for Embed on sim/embed", async () => {
    const err = await rejection(llmClient(server.baseUrl, protocol, secret).embed({ model: "embed", inputs: ["x"] }));
    expect(err.code).toBe(Code.PermissionDenied);
    expect(detailsOf(err).info).toMatchObject({ reason: "MODEL_NOT_ALLOWED", metadata: { model: "sim/embed" } });
  });

  it("ListModels shows only sim/echo", async () => {
    const { models } = await llmClient(server.baseUrl, protocol, secret).listModels({});
    expect(models.map((m) => m.id)).toEqual(["sim/echo"]);
  });
});

describe("allowed models are patterns and can change", () => {
  it("sim/* allows every sim model; an update to the key takes effect at once on this server", async () => {
    const key = await server.app.keys.create({ name: "patterns", tenant: `access-${randomUUID()}`, allowedModels: ["sim/*"] });
    const client = llmClient(server.baseUrl, "grpc", key.secret);
    expect((await client.listModels({})).models.map((m) => m.id).sort()).toEqual(["sim/echo", "sim/embed", "sim/lorem"]);
    expect((await client.generate(ask("lorem"))).model).toBe("sim/lorem");

    await server.app.keys.update(key.id, { allowedModels: ["sim/lorem"] });
    expect((await client.listModels({})).models.map((m) => m.id)).toEqual(["sim/lorem"]);
    expect(detailsOf(await rejection(client.generate(ask("echo")))).info?.reason).toBe("MODEL_NOT_ALLOWED");

    // The refusal is in the ledger like every other call.
    await server.app.ledger.flush();
    const rows = await server.app.database.db.selectFrom("generations").selectAll().where("key_id", "=", key.id).execute();
    expect(rows.map((r) => [r.status, r.error_reason]).sort()).toEqual([
      ["failed", "MODEL_NOT_ALLOWED"],
      ["ok", null],
    ]);
  });
});
