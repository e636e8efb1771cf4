import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadRequestSchema, ErrorInfoSchema } from "../../gen/ts/google/rpc/error_details_pb.js";
import {
  CircuitState,
  FinishReason,
  GenerateRequestSchema,
  Role,
  type StreamGenerateResponse,
} from "../../gen/ts/llm/v1/llm_service_pb.js";
import { llmClient, PROTOCOLS } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
}, 60_000);
afterAll(async () => {
  await server?.close();
});

const user = (content: string) => ({ role: Role.USER, content });

async function rejection(p: Promise<unknown>): Promise<ConnectError> {
  try {
    await p;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("expected the call to fail");
}

describe.each(PROTOCOLS)("LlmService over %s", (protocol) => {
  it("Generate echoes the prompt with usage, integer cost and the request id", async () => {
    const client = llmClient(server.baseUrl, protocol, server.key);
    let requestId: string | null = null;
    const res = await client.generate(
      { model: "sim/echo", messages: [user("hello there, gateway")] },
      { onHeader: (h) => (requestId = h.get("x-request-id")) },
    );
    expect(res.text).toBe("hello there, gateway");
    expect(res.model).toBe("sim/echo");
    expect(res.provider).toBe("sim");
    expect(res.finishReason).toBe(FinishReason.STOP);
    // "hello ", "there", ", ", "gateway": punctuation is a token of its own.
    expect(res.usage?.outputTokens).toBe(4n);
    expect(res.usage?.inputTokens).toBeGreaterThan(0n);
    expect(res.usage?.totalTokens).toBe((res.usage?.inputTokens ?? 0n) + 4n);
    expect(res.costUsdNanos).toBeGreaterThan(0n);
    expect(res.attempts).toBe(1);
    expect(requestId).toBe(res.id);
  });

  it("StreamGenerate sends started, the deltas in order, then completed", async () => {
    const client = llmClient(server.baseUrl, protocol, server.key);
    const events: StreamGenerateResponse["event"][] = [];
    for await (const msg of client.streamGenerate({ model: "echo", messages: [user("one two three four")] })) {
      events.push(msg.event);
    }
    expect(events[0]?.case).toBe("started");
    expect(events.at(-1)?.case).toBe("completed");
    const deltas = events.filter((e) => e.case === "delta").map((e) => e.value.text);
    expect(deltas.join("")).toBe("one two three four");
    expect(deltas.length).toBe(4);
    const done = events.at(-1);
    if (done?.case !== "completed") throw new Error("no completed event");
    expect(done.value.usage?.outputTokens).toBe(4n);
    if (events[0]?.case !== "started") throw new Error("no started event");
    expect(events[0].value.model).toBe("sim/echo");
  });

  it("BatchGenerate answers every item and one bad item does not fail the batch", async () => {
    const client = llmClient(server.baseUrl, protocol, server.key);
    const res = await client.batchGenerate({
      requests: [
        { model: "sim/echo", messages: [user("first")] },
        { model: "no-such-model", messages: [user("second")] },
        { model: "sim/lorem", messages: [user("third")] },
      ],
    });
    expect(res.results.map((r) => r.index)).toEqual([0, 1, 2]);
    expect(res.results[0]?.result.case).toBe("response");
    const bad = res.results[1]?.result;
    if (bad?.case !== "error") throw new Error("item 1 should fail");
    expect(bad.value.code).toBe(Code.NotFound);
    expect(res.results[2]?.result.case).toBe("response");
  });

  it("ListModels lists the sim models with prices and deployments", async () => {
    const client = llmClient(server.baseUrl, protocol, server.key);
    const res = await client.listModels({});
    const echo = res.models.find((m) => m.id === "sim/echo");
    expect(echo?.aliases).toContain("echo");
    expect(echo?.provider).toBe("sim");
    expect(echo?.contextWindow).toBe(8192n);
    expect(echo?.inputPriceUsdNanosPerMillion).toBe(500_000_000n);
    expect(echo?.deployments[0]?.upstreamModel).toBe("echo");
    expect(echo?.deployments[0]?.state).toBe(CircuitState.CLOSED);
  });

  it("unknown model is NOT_FOUND with ErrorInfo MODEL_NOT_FOUND", async () => {
    const client = llmClient(server.baseUrl, protocol, server.key);
    const err = await rejection(client.generate({ model: "gpt-nope", messages: [user("hi")] }));
    expect(err.code).toBe(Code.NotFound);
    const info = err.findDetails(ErrorInfoSchema)[0];
    expect(info?.reason).toBe("MODEL_NOT_FOUND");
    expect(info?.domain).toBe("llm-service");
    expect(info?.metadata["request_id"]).toMatch(/.+/);
  });

  it("bad input is INVALID_ARGUMENT with a BadRequest naming every bad field", async () => {
    const client = llmClient(server.baseUrl, protocol, server.key);
    const err = await rejection(
      client.generate({
        model: "sim/echo",
        messages: [{ role: Role.UNSPECIFIED, content: "x" }, { role: 42 as Role, content: "y" }],
        temperature: -1,
        topP: 7,
        maxOutputTokens: -5,
      }),
    );
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.findDetails(ErrorInfoSchema)[0]?.reason).toBe("INVALID_REQUEST");
    const fields = err.findDetails(BadRequestSchema)[0]?.fieldViolations.map((v) => v.field);
    expect(fields).toEqual(
      expect.arrayContaining(["messages[0].role", "messages[1].role", "temperature", "top_p", "max_output_tokens"]),
    );
  });

  it("empty messages are INVALID_ARGUMENT", async () => {
    const client = llmClient(server.baseUrl, protocol, server.key);
    const err = await rejection(client.generate({ model: "sim/echo", messages: [] }));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field).toBe("messages");
  });

  it("a call without a key is UNAUTHENTICATED, with a wrong key too", async () => {
    const anonymous = llmClient(server.baseUrl, protocol);
    expect((await rejection(anonymous.listModels({}))).code).toBe(Code.Unauthenticated);
    const wrong = llmClient(server.baseUrl, protocol, "llm_nope_nope");
    const err = await rejection(wrong.listModels({}));
    expect(err.code).toBe(Code.Unauthenticated);
    expect(err.findDetails(ErrorInfoSchema)[0]?.reason).toBe("UNAUTHENTICATED");
  });
});

describe("limits and deadlines", () => {
  it("an oversize batch is INVALID_ARGUMENT", async () => {
    const client = llmClient(server.baseUrl, "connect-h1", server.key);
    const item = create(GenerateRequestSchema, { model: "sim/echo", messages: [user("x")] });
    const err = await rejection(client.batchGenerate({ requests: Array.from({ length: 65 }, () => item) }));
    expect(err.code).toBe(Code.InvalidArgument);
  });

  it("a prompt beyond the context window is CONTEXT_LENGTH_EXCEEDED with the counts", async () => {
    const client = llmClient(server.baseUrl, "grpc", server.key);
    const err = await rejection(client.generate({ model: "sim/echo", messages: [user("word ".repeat(9000))] }));
    expect(err.code).toBe(Code.InvalidArgument);
    const info = err.findDetails(ErrorInfoSchema)[0];
    expect(info?.reason).toBe("CONTEXT_LENGTH_EXCEEDED");
    expect(Number(info?.metadata["input_tokens"])).toBeGreaterThan(8192);
  });

  it("max_output_tokens truncates with finish reason LENGTH", async () => {
    const client = llmClient(server.baseUrl, "grpc", server.key);
    const res = await client.generate({ model: "sim/echo", messages: [user("a b c d e f")], maxOutputTokens: 2 });
    expect(res.text).toBe("a b ");
    expect(res.finishReason).toBe(FinishReason.LENGTH);
  });

  it.each(["grpc", "connect-h1"] as const)("a deadline during an upstream stall is DEADLINE_EXCEEDED on time (%s)", async (protocol) => {
    const client = llmClient(server.baseUrl, protocol, server.key);
    const started = performance.now();
    const err = await rejection(
      client.generate({ model: "sim/echo", messages: [user("slow")], metadata: { "sim-stall-ms": "5000" } }, { timeoutMs: 300 }),
    );
    const elapsed = performance.now() - started;
    expect(err.code).toBe(Code.DeadlineExceeded);
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(1000);
  });

  it("a scripted upstream failure maps to its code and is recorded in the ledger", async () => {
    const client = llmClient(server.baseUrl, "grpc", server.key);
    let requestId = "";
    const err = await rejection(
      client.generate(
        { model: "sim/echo", messages: [user("x")], metadata: { "sim-fail": "PROVIDER_UNAVAILABLE" } },
        { onHeader: (h) => (requestId = h.get("x-request-id") ?? "") },
      ),
    );
    expect(err.code).toBe(Code.Unavailable);
    requestId ||= err.findDetails(ErrorInfoSchema)[0]?.metadata["request_id"] ?? "";
    await server.app.ledger.flush();
    const row = await server.app.database.db
      .selectFrom("generations")
      .selectAll()
      .where("request_id", "=", requestId)
      .executeTakeFirstOrThrow();
    expect(row.status).toBe("failed");
    expect(row.error_reason).toBe("PROVIDER_UNAVAILABLE");
  });

  it("a stream cut after the first token ends in an error status, never a clean end", async () => {
    const client = llmClient(server.baseUrl, "grpc", server.key);
    const seen: string[] = [];
    const err = await rejection(
      (async () => {
        for await (const m of client.streamGenerate({
          model: "sim/echo",
          messages: [user("a b c d")],
          metadata: { "sim-fail": "PROVIDER_UNAVAILABLE", "sim-fail-after": "2" },
        })) {
          seen.push(m.event.case ?? "");
        }
      })(),
    );
    expect(err.code).toBe(Code.Unavailable);
    expect(seen).toEqual(["started", "delta", "delta"]);
  });

  it("a client that cancels mid-stream leaves a cancelled ledger row", async () => {
    const client = llmClient(server.baseUrl, "grpc", server.key);
    const controller = new AbortController();
    const requestId = `cancel-test-${Date.now()}`;
    const stream = client.streamGenerate(
      { model: "sim/lorem", messages: [user("go on")], metadata: { "sim-inter-token-ms": "200" } },
      { signal: controller.signal, headers: { "x-request-id": requestId } },
    );
    const err = await rejection(
      (async () => {
        for await (const m of stream) {
          if (m.event.case === "delta") controller.abort();
        }
      })(),
    );
    expect(err.code).toBe(Code.Canceled);
    // The server notices the reset and records the call; poll for that row, bounded in time.
    const deadline = Date.now() + 5000;
    let row;
    while (!row && Date.now() < deadline) {
      await server.app.ledger.flush();
      row = await server.app.database.db
        .selectFrom("generations")
        .selectAll()
        .where("client_request_id", "=", requestId)
        .executeTakeFirst();
      if (!row) await new Promise((r) => setTimeout(r, 10));
    }
    expect(row?.status).toBe("cancelled");
    expect(row?.output_tokens).toBeGreaterThanOrEqual(1);
    expect(row?.output_tokens).toBeLessThan(16);
  });
});
