/**
 * Structured output through the real service, over gRPC and Connect, in front of the upstream
 * simulator on the OpenAI wire (the real `openai` SDK): a JSON-schema answer that matches, a
 * mismatch as OUTPUT_SCHEMA_MISMATCH with the path in BadRequest (unary and streamed, after the
 * deltas), a mismatch passed through when asked, and a schema that cannot be used refused as
 * INVALID_ARGUMENT before any upstream call.
 */
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Role, type LlmService, type StreamGenerateResponse } from "../../gen/ts/llm/v1/llm_service_pb.js";
import type { ProtocolName } from "../helpers/clients.js";
import { startHarness, type Harness } from "../helpers/harness.js";
import { detailsOf, rejection } from "../helpers/rpc-outcomes.js";

const SCHEMA = JSON.stringify({
  type: "object",
  properties: { city: { type: "string" }, people: { type: "integer", minimum: 0 } },
  required: ["city", "people"],
  additionalProperties: false,
});

function catalogue(upstream: string): string {
  const model = (id: string, json: string) => `
  - id: ${id}
    contextWindow: 100000
    maxOutputTokens: 256
    price: { inputPerMillion: 2, outputPerMillion: 8 }
    deployments:
      - provider: openai
        model: upstream-${id.replace("/", "-")}
        baseUrl: ${upstream}/v1
        options: { "header:x-sim-json": "${json}" }`;
  return `routing:
  maxAttempts: 1
models:${model("json/good", "valid")}${model("json/wrong", "invalid")}${model("json/prose", "not-json")}
`;
}

let server: Harness;
let chatRequests = 0;

beforeAll(async () => {
  server = await startHarness({ simulator: true, catalogue, env: { OPENAI_API_KEY: "sk-test" } });
  server.sim!.on("request", (info) => {
    if (info.path === "/v1/chat/completions") chatRequests++;
  });
}, 60_000);

afterAll(async () => {
  await server?.close();
});

const ask = (model: string, over: { passThroughMismatch?: boolean; schemaJson?: string } = {}) => ({
  model,
  messages: [{ role: Role.USER, content: "Which city, and how many people live there?" }],
  responseFormat: {
    format: { case: "jsonSchema" as const, value: { name: "census", schemaJson: over.schemaJson ?? SCHEMA, strict: true } },
    passThroughMismatch: over.passThroughMismatch ?? false,
  },
});

async function ledgerRow(requestId: string) {
  await server.app.ledger.flush();
  return server.app.database.db.selectFrom("generations").selectAll().where("request_id", "=", requestId).executeTakeFirstOrThrow();
}

/** The stream's messages until it ends, and the error it ended with. */
async function drain(stream: AsyncIterable<StreamGenerateResponse>): Promise<{ events: StreamGenerateResponse[]; error?: ConnectError }> {
  const events: StreamGenerateResponse[] = [];
  try {
    for await (const e of stream) events.push(e);
    return { events };
  } catch (err) {
    return { events, error: ConnectError.from(err) };
  }
}

describe.each<ProtocolName>(["grpc", "connect-h1"])("structured output over %s", (protocol) => {
  let client: Client<typeof LlmService>;
  beforeAll(() => {
    client = server.client(protocol);
  });

  it("answers JSON that matches the schema, unary and streamed", async () => {
    const res = await client.generate(ask("json/good"));
    expect(JSON.parse(res.text)).toEqual({ city: expect.any(String), people: expect.any(Number) });
    const { events, error } = await drain(client.streamGenerate(ask("json/good")));
    expect(error).toBeUndefined();
    const text = events.map((e) => (e.event.case === "delta" ? e.event.value.text : "")).join("");
    expect(JSON.parse(text)).toEqual(JSON.parse(res.text));
    expect(events.at(-1)?.event.case).toBe("completed");
  });

  it("a unary mismatch is FAILED_PRECONDITION OUTPUT_SCHEMA_MISMATCH with the path in BadRequest; the ledger row is failed, tokens priced", async () => {
    const err = await rejection(client.generate(ask("json/wrong")));
    expect(err.code).toBe(Code.FailedPrecondition);
    const details = detailsOf(err);
    expect(details.info?.reason).toBe("OUTPUT_SCHEMA_MISMATCH");
    expect(details.badRequest?.fieldViolations.map((v) => ({ field: v.field, description: v.description }))).toEqual([
      { field: "/city", description: "must be string" },
    ]);
    // The answer itself (its wrong value, 12345) is never in the error.
    expect(err.rawMessage).not.toContain("12345");
    const row = await ledgerRow(details.info?.metadata["request_id"] ?? "");
    expect(row).toMatchObject({ status: "failed", error_reason: "OUTPUT_SCHEMA_MISMATCH", provider: "openai" });
    expect(row.output_tokens).toBeGreaterThan(0);
    expect(BigInt(row.cost_usd_nanos)).toBeGreaterThan(0n);
  });

  it("a streamed mismatch sends the deltas, then ends with the typed error instead of completed", async () => {
    const { events, error } = await drain(client.streamGenerate(ask("json/prose")));
    expect(events[0]?.event.case).toBe("started");
    expect(events.filter((e) => e.event.case === "delta").length).toBeGreaterThan(1);
    expect(events.some((e) => e.event.case === "completed")).toBe(false);
    expect(error?.code).toBe(Code.FailedPrecondition);
    const details = detailsOf(error!);
    expect(details.info?.reason).toBe("OUTPUT_SCHEMA_MISMATCH");
    expect(details.badRequest?.fieldViolations[0]).toMatchObject({ field: "", description: "must be JSON text" });
    const row = await ledgerRow(details.info?.metadata["request_id"] ?? "");
    expect(row).toMatchObject({ status: "failed", error_reason: "OUTPUT_SCHEMA_MISMATCH" });
  });

  it("a batch item that mismatches fails alone, with the same typed error", async () => {
    const res = await client.batchGenerate({ requests: [ask("json/good"), ask("json/wrong")] });
    expect(res.results[0]?.result.case).toBe("response");
    const failed = res.results[1]?.result;
    expect(failed?.case).toBe("error");
    expect(failed?.case === "error" ? failed.value.code : undefined).toBe(Code.FailedPrecondition);
  });

  it("passes a mismatch through when the request says so", async () => {
    const res = await client.generate(ask("json/wrong", { passThroughMismatch: true }));
    expect(JSON.parse(res.text)).toMatchObject({ city: 12345 });
  });

  it("refuses a schema it cannot use as INVALID_ARGUMENT on schema_json, before any upstream call", async () => {
    const before = chatRequests;
    const err = await rejection(client.generate(ask("json/good", { schemaJson: '{"type": "objekt"}' })));
    expect(err.code).toBe(Code.InvalidArgument);
    const details = detailsOf(err);
    expect(details.info?.reason).toBe("INVALID_REQUEST");
    expect(details.badRequest?.fieldViolations[0]?.field).toBe("response_format.json_schema.schema_json");
    const streamed = await drain(client.streamGenerate(ask("json/good", { schemaJson: "{not json" })));
    expect(streamed.error?.code).toBe(Code.InvalidArgument);
    expect(chatRequests).toBe(before);
  });
});
