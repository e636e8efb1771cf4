import type * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/ts/google/rpc/error_details_pb.js";
import { StatusSchema } from "../../gen/ts/google/rpc/status_pb.js";
import {
  GenerateRequestSchema,
  GenerateResponseSchema,
  Role,
  StreamGenerateRequestSchema,
  type GenerateResponse,
  type StreamGenerateResponse,
} from "../../gen/ts/llm/v1/llm_service_pb.js";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import type { Simulator } from "../../src/simulator/index.js";
import { grpcMetadata } from "../helpers/clients.js";
import { startHarness, type Harness } from "../helpers/harness.js";
import { rawGrpcUnary } from "../helpers/raw-grpc.js";

/** The gateway in front of the upstream simulator, over all three wire formats, called by grpc-js. */
let sim: Simulator;
let server: Harness;
let client: grpc.Client & Record<string, Function>;
const run = `${Date.now()}-${Math.random().toString(36).slice(2)}`;

function catalogue(url: string): string {
  const model = (id: string, provider: string, extra: string, fallbacks: string[] = []) => `
  - id: ${id}
    contextWindow: 100000
    maxOutputTokens: 256
    price: { inputPerMillion: 1, outputPerMillion: 2 }
    fallbacks: [${fallbacks.join(", ")}]
    deployments:
      - provider: ${provider}
        model: upstream-${id}
        baseUrl: ${provider === "openai" ? `${url}/v1` : url}
${extra}`;
  const opts = (headers: Record<string, string>) =>
    `        options:\n${Object.entries(headers)
      .map(([k, v]) => `          "header:${k}": "${v}"`)
      .join("\n")}`;
  return `routing:
  attemptTimeoutMs: 10000
  maxAttempts: 3
  backoffBaseMs: 20
  backoffCapMs: 100
models:${[
    model("oai", "openai", opts({ "x-sim-text": "echo" })),
    model("claude", "anthropic", opts({ "x-sim-text": "echo" })),
    model("llama", "ollama", opts({ "x-sim-text": "echo" })),
    model("oai-flaky", "openai", opts({ "x-sim-text": "echo", "x-sim-status": "503", "x-sim-fail-times": "1", "x-sim-fail-key": `flaky-${run}` })),
    model("oai-stall", "openai", opts({ "x-sim-fault": "stall" })),
    model("oai-down", "openai", opts({ "x-sim-status": "503" }), ["claude"]),
    model("oai-429", "openai", opts({ "x-sim-status": "429", "x-sim-retry-after": "30" })),
    model("oai-outage", "openai", opts({ "x-sim-status": "503" })),
  ].join("")}
  - id: sim
    contextWindow: 100000
    maxOutputTokens: 256
    deployments:
      - { provider: sim, model: echo }
`;
}

beforeAll(async () => {
  server = await startHarness({
    simulator: true,
    catalogue,
    env: { OPENAI_API_KEY: "sk-test-openai", ANTHROPIC_API_KEY: "sk-test-anthropic" },
  });
  sim = server.sim!;
  client = server.grpcJs();
}, 60_000);

afterAll(async () => {
  client?.close();
  await server?.close();
});

const prompt = (model: string) => ({ model, messages: [{ role: Role.USER, content: "hello upstream world" }] });
const ask = (model: string) => create(GenerateRequestSchema, prompt(model));

function generate(req: object, deadlineMs = 10_000): Promise<GenerateResponse> {
  const md = grpcMetadata(server.key);
  return new Promise((resolve, reject) =>
    client["generate"]!(req, md, { deadline: Date.now() + deadlineMs }, (err: grpc.ServiceError | null, res: GenerateResponse) =>
      err ? reject(err) : resolve(res),
    ),
  );
}

function stream(model: string): Promise<StreamGenerateResponse[]> {
  return new Promise((resolve, reject) => {
    const events: StreamGenerateResponse[] = [];
    const call = client["streamGenerate"]!(create(StreamGenerateRequestSchema, prompt(model)), grpcMetadata(server.key), { deadline: Date.now() + 10_000 }) as grpc.ClientReadableStream<StreamGenerateResponse>;
    call.on("data", (e: StreamGenerateResponse) => events.push(e));
    call.on("error", reject);
    call.on("end", () => resolve(events));
  });
}

function reasonOf(err: grpc.ServiceError): string | undefined {
  const bin = err.metadata.get("grpc-status-details-bin")[0];
  if (!(bin instanceof Buffer)) return undefined;
  const status = fromBinary(StatusSchema, bin);
  return status.details.map((d) => anyUnpack(d, ErrorInfoSchema)).find((x) => x !== undefined)?.reason;
}

describe.each([
  ["oai", "openai"],
  ["claude", "anthropic"],
  ["llama", "ollama"],
])("happy path through %s (%s wire format)", (model, provider) => {
  it("answers a unary call with the upstream's text and usage", async () => {
    const res = await generate(ask(model));
    expect(res.text).toBe("hello upstream world");
    expect(res.provider).toBe(provider);
    expect(res.usage?.outputTokens).toBe(3n);
    expect(res.usage?.inputTokens).toBeGreaterThan(0n);
    expect(res.costUsdNanos).toBeGreaterThan(0n);
  });

  it("streams started, deltas and completed", async () => {
    const events = await stream(model);
    expect(events[0]?.event.case).toBe("started");
    expect(events.at(-1)?.event.case).toBe("completed");
    const text = events.map((e) => (e.event.case === "delta" ? e.event.value.text : "")).join("");
    expect(text).toBe("hello upstream world");
  });
});

describe("how the upstream is asked", () => {
  const nextBody = () => new Promise<Record<string, unknown>>((resolve) => sim.once("request", (info: { body: unknown }) => resolve(info.body as Record<string, unknown>)));

  it("a unary call the cache will not keep asks the OpenAI upstream for one non-streamed completion", async () => {
    const seen = nextBody();
    const res = await generate(ask("oai"));
    expect(res.text).toBe("hello upstream world");
    const body = await seen;
    expect(body.stream).toBe(false);
    expect(body.stream_options).toBeUndefined();
  });

  it("a streamed call streams from the OpenAI upstream", async () => {
    const seen = nextBody();
    await stream("oai");
    expect((await seen).stream).toBe(true);
  });
});

describe("a failing upstream, inside the caller's deadline", () => {
  it("retries a 503 and then succeeds, with both attempts in the ledger row", async () => {
    const res = await generate(ask("oai-flaky"));
    expect(res.text).toBe("hello upstream world");
    expect(res.attempts).toBe(2);
    await server.app.ledger.flush();
    const row = await server.app.database.db.selectFrom("generations").selectAll().where("request_id", "=", res.id).executeTakeFirstOrThrow();
    expect(row.attempts.map((a) => a.reason)).toEqual(["PROVIDER_UNAVAILABLE", "OK"]);
  });

  it("falls back to another provider when every attempt at the first fails", async () => {
    const res = await generate(ask("oai-down"));
    expect(res.model).toBe("claude");
    expect(res.provider).toBe("anthropic");
    expect(res.attempts).toBe(4);
  });

  it("a Retry-After beyond the deadline ends at once with RESOURCE_EXHAUSTED", async () => {
    const started = performance.now();
    const err = await generate(ask("oai-429"), 2_000).then(
      () => undefined,
      (e: grpc.ServiceError) => e,
    );
    expect(err?.code).toBe(8);
    expect(reasonOf(err!)).toBe("PROVIDER_RATE_LIMITED");
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it("a 2 s deadline against a stalled upstream is DEADLINE_EXCEEDED within a few ms, and the upstream sees the close", async () => {
    // A raw HTTP/2 client sends grpc-timeout: 2000m and keeps no timer of its own. (grpc-js's own
    // deadline timer fired a few ms before the server's under load, and its RST_STREAM made the
    // server record CANCELLED.) So the status below is the server's, at the server's deadline.
    const result = await rawGrpcUnary({
      baseUrl: server.baseUrl,
      path: "/llm.v1.LlmService/Generate",
      message: toBinary(GenerateRequestSchema, ask("oai-stall")),
      headers: { authorization: `Bearer ${server.key}`, "grpc-timeout": "2000m" },
      giveUpMs: 10_000,
    });
    const elapsed = result.elapsedMs;
    if (process.env["LLM_TEST_VERBOSE"]) console.log(`stalled upstream, 2 s deadline: error after ${elapsed.toFixed(1)} ms`);
    expect(result.status).toBe("4");
    const requestId = result.errorMetadata["request_id"];
    expect(requestId).toBeTruthy();
    expect(elapsed).toBeGreaterThanOrEqual(1_990);
    // The client's own view, loose enough for a busy machine (it failed at 2,116 ms under CI load);
    // the ledger row below holds the server to its deadline exactly.
    expect(elapsed).toBeLessThan(2_500);
    const abort = await sim.waitForAbort({ path: "/v1/chat/completions", timeoutMs: 2_000 });
    expect(abort.stalled).toBe(true);
    // The server's record shows it ended the work on time.
    await server.app.ledger.flush();
    const row = await server.app.database.db.selectFrom("generations").selectAll().where("request_id", "=", requestId!).executeTakeFirstOrThrow();
    expect(row.error_reason).toBe("PROVIDER_TIMEOUT");
    expect(row.latency_ms).toBeGreaterThanOrEqual(1_980);
    expect(row.latency_ms).toBeLessThan(2_050);
  });
});

describe("an upstream that always fails", () => {
  it("50 concurrent calls make at most 1.2 upstream requests each, and every caller gets UNAVAILABLE before its deadline", async () => {
    const calls = 50;
    const deadlineMs = 5_000;
    let upstream = 0;
    const count = (info: { path: string; body: unknown }) => {
      if (info.path === "/v1/chat/completions" && (info.body as { model?: unknown }).model === "upstream-oai-outage") upstream++;
    };
    sim.on("request", count);
    try {
      const outcomes = await Promise.all(
        Array.from({ length: calls }, async () => {
          const started = performance.now();
          const err = await generate(ask("oai-outage"), deadlineMs).then(
            () => undefined,
            (e: grpc.ServiceError) => e,
          );
          return { err, elapsed: performance.now() - started };
        }),
      );
      if (process.env["LLM_TEST_VERBOSE"]) console.log(`always-503 upstream: ${upstream} upstream requests for ${calls} calls`);
      for (const { err, elapsed } of outcomes) {
        expect(err?.code).toBe(14);
        expect(["PROVIDER_UNAVAILABLE", "CIRCUIT_OPEN"]).toContain(reasonOf(err!));
        expect(elapsed).toBeLessThan(deadlineMs);
      }
      expect(upstream).toBeGreaterThan(0);
      expect(upstream).toBeLessThanOrEqual(calls * 1.2);
    } finally {
      sim.off("request", count);
    }
  });
});

/**
 * grpc-go writes grpc-timeout in microseconds (`19999984u`), grpcio in whatever unit keeps 8 digits,
 * and either may send nanoseconds. The deadline then has a fraction of a millisecond, which must not
 * reach a vendor SDK that insists on whole milliseconds (openai's rejected it: INTERNAL).
 */
describe.each([
  ["oai", "openai"],
  ["claude", "anthropic"],
  ["llama", "ollama"],
  ["sim", "sim"],
])("fractional grpc-timeout values through %s (%s)", (model) => {
  const call = (grpcTimeout: string) =>
    rawGrpcUnary({
      baseUrl: server.baseUrl,
      path: "/llm.v1.LlmService/Generate",
      message: toBinary(GenerateRequestSchema, ask(model)),
      headers: { authorization: `Bearer ${server.key}`, "grpc-timeout": grpcTimeout },
      giveUpMs: 30_000,
    });

  // 19999984u is what grpc-go sends for a 20 s deadline (above attemptTimeoutMs, so the attempt's budget is whole);
  // 2500001u and 3333333u leave the attempt a fraction of a millisecond.
  it.each(["19999984u", "2500001u", "3333333u"])("grpc-timeout %s succeeds", async (grpcTimeout) => {
    const result = await call(grpcTimeout);
    expect({ status: result.status, message: result.message }).toEqual({ status: "0", message: undefined });
    expect(fromBinary(GenerateResponseSchema, result.body!).text).toBe("hello upstream world");
  });

  // The longest nanosecond value grpc-timeout can carry (8 digits) is 0.1 s: an answer or the deadline, never INTERNAL.
  it("grpc-timeout 99999999n is answered or DEADLINE_EXCEEDED", async () => {
    const result = await call("99999999n");
    expect(["0", "4"]).toContain(result.status);
  });

  it.each(["999n", "999u", "1n", "4999u"])("grpc-timeout %s (too short for an attempt) is DEADLINE_EXCEEDED, never INTERNAL", async (grpcTimeout) => {
    const result = await call(grpcTimeout);
    expect(result.status).toBe("4");
  });
});
