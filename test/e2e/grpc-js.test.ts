/** LlmService through a plain @grpc/grpc-js client: the client most Node services use, with its own HTTP/2 stack. */
import { create, fromBinary } from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/ts/google/rpc/error_details_pb.js";
import { StatusSchema } from "../../gen/ts/google/rpc/status_pb.js";
import {
  BatchGenerateRequestSchema,
  FinishReason,
  GenerateRequestSchema,
  GetUsageRequestSchema,
  ListModelsRequestSchema,
  LlmService,
  Role,
  StreamGenerateRequestSchema,
  type BatchGenerateResponse,
  type GenerateResponse,
  type GetUsageResponse,
  type ListModelsResponse,
  type StreamGenerateResponse,
} from "../../gen/ts/llm/v1/llm_service_pb.js";
import { grpcJsClient, grpcMetadata } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

type GrpcJsClient = ReturnType<typeof grpcJsClient>;

let server: TestServer;
let client: GrpcJsClient;
beforeAll(async () => {
  server = await startTestServer();
  client = grpcJsClient(LlmService, server.port);
}, 60_000);
afterAll(async () => {
  client?.close();
  await server?.close();
});

const user = (content: string) => ({ role: Role.USER, content });

/** A unary grpc-js call as a promise; rejects with the grpc-js ServiceError. */
function unary<Res>(
  c: GrpcJsClient,
  method: string,
  request: unknown,
  metadata: grpc.Metadata,
  options: grpc.CallOptions = {},
): Promise<Res> {
  return new Promise((resolve, reject) => {
    const fn = c[method];
    if (typeof fn !== "function") throw new Error(`no method ${method}`);
    fn.call(c, request, metadata, options, (err: grpc.ServiceError | null, res: Res) => (err ? reject(err) : resolve(res)));
  });
}

async function failure(p: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await p;
  } catch (err) {
    return err as grpc.ServiceError;
  }
  throw new Error("expected the call to fail");
}

/** Every message of a server stream, in order, and its final status, via the event API. */
function collectStream(
  c: GrpcJsClient,
  request: unknown,
  metadata: grpc.Metadata,
): Promise<{ messages: StreamGenerateResponse[]; status: grpc.StatusObject }> {
  return new Promise((resolve, reject) => {
    const call = (c["streamGenerate"] as Function).call(c, request, metadata) as grpc.ClientReadableStream<StreamGenerateResponse>;
    const messages: StreamGenerateResponse[] = [];
    call.on("data", (m: StreamGenerateResponse) => messages.push(m));
    call.on("error", reject);
    // "status" comes after the last "data"; it is the call's end for a success.
    call.on("status", (status: grpc.StatusObject) => {
      if (status.code === grpc.status.OK) resolve({ messages, status });
    });
  });
}

/** The google.rpc.Status in an error's grpc-status-details-bin trailer, with its ErrorInfo unpacked. */
function detailsOf(err: grpc.ServiceError) {
  const raw = err.metadata.get("grpc-status-details-bin")[0];
  if (!(raw instanceof Buffer)) throw new Error("no grpc-status-details-bin trailer");
  const status = fromBinary(StatusSchema, raw);
  const info = status.details.map((d) => anyUnpack(d, ErrorInfoSchema)).find((m) => m !== undefined);
  return { status, info };
}

describe("LlmService over @grpc/grpc-js", () => {
  it("Generate answers with the echoed text, usage and cost", async () => {
    const res = await unary<GenerateResponse>(
      client,
      "generate",
      create(GenerateRequestSchema, { model: "sim/echo", messages: [user("hello from grpcjs")] }),
      grpcMetadata(server.key),
    );
    expect(res.text).toBe("hello from grpcjs");
    expect(res.model).toBe("sim/echo");
    expect(res.finishReason).toBe(FinishReason.STOP);
    expect(res.usage?.outputTokens).toBe(3n);
    expect(res.costUsdNanos).toBeGreaterThan(0n);
  });

  it("StreamGenerate delivers started, every delta in order, then completed", async () => {
    const { messages } = await collectStream(
      client,
      create(StreamGenerateRequestSchema, { model: "echo", messages: [user("alpha beta gamma delta epsilon")] }),
      grpcMetadata(server.key),
    );
    const cases = messages.map((m) => m.event.case);
    expect(cases).toEqual(["started", "delta", "delta", "delta", "delta", "delta", "completed"]);
    const text = messages.flatMap((m) => (m.event.case === "delta" ? [m.event.value.text] : [])).join("");
    expect(text).toBe("alpha beta gamma delta epsilon");
    const done = messages.at(-1)?.event;
    if (done?.case !== "completed") throw new Error("no completed event");
    expect(done.value.usage?.outputTokens).toBe(5n);
    expect(done.value.finishReason).toBe(FinishReason.STOP);
  });

  it("BatchGenerate returns one result per item, the bad one as a google.rpc.Status", async () => {
    const res = await unary<BatchGenerateResponse>(
      client,
      "batchGenerate",
      create(BatchGenerateRequestSchema, {
        requests: [
          { model: "sim/echo", messages: [user("one")] },
          { model: "missing/model", messages: [user("two")] },
        ],
      }),
      grpcMetadata(server.key),
    );
    expect(res.results.map((r) => r.index)).toEqual([0, 1]);
    const first = res.results[0]?.result;
    if (first?.case !== "response") throw new Error("item 0 should succeed");
    expect(first.value.text).toBe("one");
    const second = res.results[1]?.result;
    if (second?.case !== "error") throw new Error("item 1 should fail");
    expect(second.value.code).toBe(grpc.status.NOT_FOUND);
    expect(second.value.details.map((d) => anyUnpack(d, ErrorInfoSchema)?.reason)).toContain("MODEL_NOT_FOUND");
  });

  it("ListModels lists the sim catalogue", async () => {
    const res = await unary<ListModelsResponse>(client, "listModels", create(ListModelsRequestSchema, {}), grpcMetadata(server.key));
    const ids = res.models.map((m) => m.id);
    expect(ids).toEqual(expect.arrayContaining(["sim/echo", "sim/lorem"]));
  });

  it("an unknown model fails NOT_FOUND with ErrorInfo MODEL_NOT_FOUND in grpc-status-details-bin", async () => {
    const err = await failure(
      unary(client, "generate", create(GenerateRequestSchema, { model: "no/such", messages: [user("x")] }), grpcMetadata(server.key)),
    );
    expect(err.code).toBe(grpc.status.NOT_FOUND);
    const { status, info } = detailsOf(err);
    expect(status.code).toBe(grpc.status.NOT_FOUND);
    expect(status.message).toContain('model "no/such"');
    // grpc-js decodes grpc-message with decodeURI, so "/" and ";" stay percent-encoded in err.details.
    expect(decodeURIComponent(err.details)).toBe(status.message);
    expect(info?.reason).toBe("MODEL_NOT_FOUND");
    expect(info?.domain).toBe("llm-service");
    expect(info?.metadata["model"]).toBe("no/such");
  });

  it("a grpc-js deadline during an upstream stall ends DEADLINE_EXCEEDED on time", async () => {
    const started = performance.now();
    const err = await failure(
      unary(
        client,
        "generate",
        create(GenerateRequestSchema, { model: "sim/echo", messages: [user("slow")], metadata: { "sim-stall-ms": "5000" } }),
        grpcMetadata(server.key),
        { deadline: Date.now() + 300 },
      ),
    );
    const elapsed = performance.now() - started;
    expect(err.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(elapsed).toBeGreaterThanOrEqual(280);
    expect(elapsed).toBeLessThan(1000);
    // The server is still fine afterwards.
    const ok = await unary<GenerateResponse>(
      client,
      "generate",
      create(GenerateRequestSchema, { model: "sim/echo", messages: [user("after")] }),
      grpcMetadata(server.key),
    );
    expect(ok.text).toBe("after");
  });

  it("GetUsage totals match the calls the tenant made", async () => {
    const key = (await server.app.keys.create({ name: "usage", tenant: "usage-check" })).secret;
    const md = () => grpcMetadata(key);
    const a = await unary<GenerateResponse>(client, "generate", create(GenerateRequestSchema, { model: "sim/echo", messages: [user("a b c")] }), md());
    const b = await unary<GenerateResponse>(client, "generate", create(GenerateRequestSchema, { model: "sim/lorem", messages: [user("go")] }), md());
    const { messages } = await collectStream(client, create(StreamGenerateRequestSchema, { model: "sim/echo", messages: [user("x y")] }), md());
    const c = messages.at(-1)?.event;
    if (c?.case !== "completed") throw new Error("no completed event");
    await failure(unary(client, "generate", create(GenerateRequestSchema, { model: "sim/echo", messages: [user("z")], metadata: { "sim-fail": "PROVIDER_UNAVAILABLE" } }), md()));
    await server.app.ledger.flush();

    const usage = await unary<GetUsageResponse>(client, "getUsage", create(GetUsageRequestSchema, {}), md());
    expect(usage.tenant).toBe("usage-check");
    const t = usage.totals;
    expect(t?.requests).toBe(4n);
    expect(t?.succeeded).toBe(3n);
    expect(t?.failed).toBe(1n);
    const outputs = [a.usage, b.usage, c.value.usage].map((u) => u?.outputTokens ?? 0n);
    expect(t?.usage?.outputTokens).toBe(outputs.reduce((x, y) => x + y, 0n));
    const okInputs = [a.usage, b.usage, c.value.usage].map((u) => u?.inputTokens ?? 0n).reduce((x, y) => x + y, 0n);
    // The failed call counted its prompt tokens too.
    expect(t?.usage?.inputTokens).toBeGreaterThan(okInputs);
    expect(t?.costUsdNanos).toBeGreaterThanOrEqual(a.costUsdNanos + b.costUsdNanos + c.value.costUsdNanos);
    expect(usage.byModel.map((m) => [m.model, m.totals?.requests])).toEqual([
      ["sim/echo", 3n],
      ["sim/lorem", 1n],
    ]);
  });

  it("GetUsage naming another tenant is PERMISSION_DENIED for a user key, allowed for an admin", async () => {
    const err = await failure(unary(client, "getUsage", create(GetUsageRequestSchema, { tenant: "ops" }), grpcMetadata(server.key)));
    expect(err.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(detailsOf(err).info?.reason).toBe("TENANT_NOT_ALLOWED");

    const acmeUsage = async () => {
      await server.app.ledger.flush();
      return unary<GetUsageResponse>(client, "getUsage", create(GetUsageRequestSchema, { tenant: "acme" }), grpcMetadata(server.adminKey));
    };
    const before = await acmeUsage();
    expect(before.tenant).toBe("acme");
    await unary(client, "generate", create(GenerateRequestSchema, { model: "sim/echo", messages: [user("counted")] }), grpcMetadata(server.key));
    const after = await acmeUsage();
    expect(after.totals?.requests).toBe((before.totals?.requests ?? 0n) + 1n);
    expect(after.totals?.succeeded).toBe((before.totals?.succeeded ?? 0n) + 1n);
  });

  it("a call without credentials is UNAUTHENTICATED", async () => {
    const err = await failure(unary(client, "listModels", create(ListModelsRequestSchema, {}), new grpc.Metadata()));
    expect(err.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(detailsOf(err).info?.reason).toBe("UNAUTHENTICATED");
  });
});
