/**
 * The TypeScript SDK (sdk/ts) against a live service over real sockets: every RPC, stream order and
 * the completed event, deadlines, cancellation that reaches the service's ledger, and error details,
 * through both builds — Node (connect-node: Connect over HTTP/1.1 and h2c, gRPC, gRPC-web) and
 * browser (connect-web over fetch: Connect, gRPC-web), the latter run here on Node's fetch.
 */
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as web from "../../sdk/ts/src/browser.js";
import * as node from "../../sdk/ts/src/node.js";
import {
  Code,
  codeName,
  ConnectError,
  ErrorInfoSchema,
  FinishReason,
  Role,
  type LlmClientOptions,
  type LlmProtocol,
  type StreamGenerateResponse,
} from "../../sdk/ts/src/node.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
}, 60_000);
afterAll(async () => {
  await server?.close();
});

interface Variant {
  name: string;
  build: typeof node | typeof web;
  protocol: LlmProtocol;
  httpVersion?: "1.1" | "2";
}

const VARIANTS: Variant[] = [
  { name: "node, connect over HTTP/1.1", build: node, protocol: "connect" },
  { name: "node, connect over h2c", build: node, protocol: "connect", httpVersion: "2" },
  { name: "node, grpc", build: node, protocol: "grpc" },
  { name: "node, grpc-web", build: node, protocol: "grpc-web" },
  { name: "browser build, connect over fetch", build: web, protocol: "connect" },
  { name: "browser build, grpc-web over fetch", build: web, protocol: "grpc-web" },
];

const user = (content: string) => ({ role: Role.USER, content });

async function rejection(p: Promise<unknown>): Promise<ConnectError> {
  try {
    await p;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("expected the call to fail");
}

/** The ledger row of the call that sent this x-request-id (the row's client_request_id). */
async function ledgerRow(clientRequestId: string) {
  const deadline = Date.now() + 5000;
  for (;;) {
    await server.app.ledger.flush();
    const row = await server.app.database.db.selectFrom("generations").selectAll().where("client_request_id", "=", clientRequestId).executeTakeFirst();
    if (row || Date.now() > deadline) return row;
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.each(VARIANTS)("createLlmClient: $name", ({ build, protocol, httpVersion }) => {
  const client = (extra: Partial<LlmClientOptions> = {}) =>
    build.createLlmClient({
      baseUrl: server.baseUrl,
      apiKey: server.key,
      protocol,
      ...(httpVersion ? { httpVersion } : {}),
      ...extra,
    });

  it("ListModels lists the sim catalogue with prices", async () => {
    const { models } = await client().listModels({});
    expect(models.map((m) => m.id)).toEqual(expect.arrayContaining(["sim/echo", "sim/lorem"]));
    const echo = models.find((m) => m.id === "sim/echo");
    expect(echo?.aliases).toEqual(["echo"]);
    expect(echo?.inputPriceUsdNanosPerMillion).toBe(500_000_000n);
  });

  it("Generate answers with usage, integer cost and the request id header", async () => {
    let header: string | null = null;
    const res = await client().generate(
      { model: "echo", messages: [user("hello from the SDK")] },
      { onHeader: (h) => (header = h.get("x-request-id")) },
    );
    expect(res.text).toBe("hello from the SDK");
    expect(res.model).toBe("sim/echo");
    expect(res.finishReason).toBe(FinishReason.STOP);
    expect(res.usage?.outputTokens).toBeGreaterThan(0n);
    expect(res.usage?.totalTokens).toBe((res.usage?.inputTokens ?? 0n) + (res.usage?.outputTokens ?? 0n));
    expect(typeof res.costUsdNanos).toBe("bigint");
    expect(res.costUsdNanos).toBeGreaterThan(0n);
    expect(header).toBe(res.id);
  });

  it("StreamGenerate sends started, the deltas in order, then completed", async () => {
    const events: StreamGenerateResponse["event"][] = [];
    for await (const { event } of client().streamGenerate({ model: "sim/echo", messages: [user("one two three four")] })) {
      events.push(event);
    }
    expect(events[0]?.case).toBe("started");
    expect(events.at(-1)?.case).toBe("completed");
    const deltas = events.filter((e) => e.case === "delta");
    expect(deltas.map((d) => d.value.text).join("")).toBe("one two three four");
    expect(deltas.length).toBe(4);
    const completed = events.at(-1);
    expect(completed?.case === "completed" && completed.value.usage?.outputTokens).toBe(4n);
  });

  it("a call's timeoutMs is its deadline: DEADLINE_EXCEEDED, on time", async () => {
    const t0 = Date.now();
    const err = await rejection(
      (async () => {
        const stream = client().streamGenerate(
          { model: "sim/echo", messages: [user("too slow")], metadata: { "sim-stall-ms": "5000" } },
          { timeoutMs: 300 },
        );
        for await (const _ of stream) {
          // drain
        }
      })(),
    );
    expect(err.code).toBe(Code.DeadlineExceeded);
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it("aborting the signal mid-stream cancels the call, and the service records it as cancelled", async () => {
    const controller = new AbortController();
    const requestId = `sdk-cancel-${protocol}-${httpVersion ?? "default"}-${Date.now()}`;
    const err = await rejection(
      (async () => {
        const stream = client().streamGenerate(
          { model: "sim/lorem", messages: [user("keep going")], metadata: { "sim-inter-token-ms": "100" } },
          { signal: controller.signal, headers: { "x-request-id": requestId } },
        );
        for await (const { event } of stream) {
          if (event.case === "delta") controller.abort();
        }
      })(),
    );
    expect(err.code).toBe(Code.Canceled);
    const row = await ledgerRow(requestId);
    expect(row?.status).toBe("cancelled");
    expect(row?.output_tokens).toBeGreaterThanOrEqual(1);
  });

  it("errors carry ErrorInfo, readable with findDetails and errorInfoOf", async () => {
    const err = await rejection(client().generate({ model: "gpt-nope", messages: [user("hi")] }));
    expect(err.code).toBe(Code.NotFound);
    const [info] = err.findDetails(ErrorInfoSchema);
    expect(info?.reason).toBe("MODEL_NOT_FOUND");
    expect(info?.domain).toBe("llm-service");
    expect(info?.metadata["request_id"]).toBeTruthy();
    expect(build.errorInfoOf(err)?.reason).toBe("MODEL_NOT_FOUND");
  });

  it("RESOURCE_EXHAUSTED from an upstream 429 carries RetryInfo", async () => {
    // The sim's upstream says "retry after 1.5 s"; with 1 s left the service stops at once and passes it on.
    const err = await rejection(
      client().generate(
        {
          model: "sim/echo",
          messages: [user("rate limited")],
          metadata: { "sim-fail": "PROVIDER_RATE_LIMITED", "sim-retry-after-ms": "1500" },
        },
        { timeoutMs: 1000 },
      ),
    );
    expect(codeName(err.code)).toBe("RESOURCE_EXHAUSTED");
    expect(build.errorInfoOf(err)?.reason).toBe("PROVIDER_RATE_LIMITED");
    expect(build.retryDelayMsOf(err)).toBe(1500);
    expect(build.retryInfoOf(err)?.retryDelay?.seconds).toBe(1n);
  });

  it("GetUsage and BatchGenerate work, one failed batch item failing only itself", async () => {
    const batch = await client().batchGenerate({
      requests: [
        { model: "sim/echo", messages: [user("first")] },
        { model: "missing/model", messages: [user("second")] },
      ],
    });
    expect(batch.results.map((r) => r.result.case)).toEqual(["response", "error"]);
    const usage = await client().getUsage({});
    expect(usage.tenant).toBe("acme");
    expect(usage.totals?.requests).toBeGreaterThan(0n);
    expect(usage.byModel.map((m) => m.model)).toContain("sim/echo");
  });

  it("without a key the service answers UNAUTHENTICATED", async () => {
    const err = await rejection(client({ apiKey: undefined }).listModels({}));
    expect(err.code).toBe(Code.Unauthenticated);
    expect(build.errorInfoOf(err)?.reason).toBe("UNAUTHENTICATED");
  });
});

describe("createLlmClient options", () => {
  const user1 = [user("x")];

  it("applies its default deadline (timeoutMs) to calls that set none", async () => {
    const llm = node.createLlmClient({ baseUrl: server.baseUrl, apiKey: server.key, timeoutMs: 200 });
    const err = await rejection(llm.generate({ model: "sim/echo", messages: user1, metadata: { "sim-stall-ms": "5000" } }));
    expect(err.code).toBe(Code.DeadlineExceeded);
  });

  it("asks an apiKey function for the key on every call", async () => {
    let asked = 0;
    const llm = node.createLlmClient({
      baseUrl: server.baseUrl,
      apiKey: async () => {
        asked++;
        return server.key;
      },
    });
    await llm.listModels({});
    await llm.listModels({});
    expect(asked).toBe(2);
  });

  it("leaves a call's own authorization header alone", async () => {
    const llm = node.createLlmClient({ baseUrl: server.baseUrl, apiKey: server.key });
    const err = await rejection(llm.listModels({}, { headers: { authorization: "Bearer llm_nope_nope" } }));
    expect(err.code).toBe(Code.Unauthenticated);
    const admin = await llm.getUsage({}, { headers: { authorization: `Bearer ${server.adminKey}` } });
    expect(admin.tenant).toBe("ops");
  });

  it("adds the key to a transport of the caller's own", async () => {
    const llm = node.createLlmClient({ baseUrl: "unused", apiKey: server.key, transport: createGrpcTransport({ baseUrl: server.baseUrl }) });
    const res = await llm.generate({ model: "sim/echo", messages: [user("own transport")] });
    expect(res.text).toBe("own transport");
    expect(() =>
      node.createLlmClient({ baseUrl: "", transport: createGrpcTransport({ baseUrl: server.baseUrl }), interceptors: [(next) => next] }),
    ).toThrow(/interceptors/);
  });

  it("rejects what cannot work: gRPC in the browser build, unknown protocols, a key with spaces", async () => {
    expect(() => web.createLlmClient({ baseUrl: server.baseUrl, protocol: "grpc" })).toThrow(/grpc-web/);
    expect(() => node.createLlmClient({ baseUrl: server.baseUrl, protocol: "http3" as LlmProtocol })).toThrow(/protocol/);
    expect(() => node.createLlmClient({ baseUrl: "" })).toThrow(/baseUrl/);
    expect(() => node.createLlmClient({ baseUrl: server.baseUrl, timeoutMs: -1 })).toThrow(/timeoutMs/);
    const pasted = node.createLlmClient({ baseUrl: server.baseUrl, apiKey: `${server.key}\n` });
    await expect(pasted.listModels({})).rejects.toThrow(/printable ASCII/);
  });

  it("names codes the gRPC way", () => {
    expect(codeName(Code.ResourceExhausted)).toBe("RESOURCE_EXHAUSTED");
    expect(codeName(Code.Canceled)).toBe("CANCELLED");
    expect(codeName(Code.DeadlineExceeded)).toBe("DEADLINE_EXCEEDED");
  });
});
