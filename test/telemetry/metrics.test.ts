/**
 * GET /metrics on the main port, scraped before and after a known set of calls: counters and
 * histograms move by exactly what those calls should add, and agree with the usage ledger.
 * The service runs as deployed without an OTLP endpoint (no span is recorded).
 */
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CacheMode, GenerateRequestSchema, LlmService, Role, StreamGenerateRequestSchema } from "../../gen/ts/llm/v1/llm_service_pb.js";
import { bearer } from "../helpers/clients.js";
import { startObservedServer, type ObservedServer } from "./helpers.js";
import { parsePrometheus, types, valueOf, type Sample } from "./prometheus-text.js";

const CATALOGUE = `routing:
  maxAttempts: 2
  backoffBaseMs: 1
  backoffCapMs: 2
models:
  - id: m
    contextWindow: 10000
    maxOutputTokens: 256
    price: { inputPerMillion: 1000, outputPerMillion: 2000 }
    deployments: [{ provider: sim, model: echo }]
  - id: m2
    contextWindow: 10000
    maxOutputTokens: 256
    price: { inputPerMillion: 1000, outputPerMillion: 2000 }
    deployments: [{ provider: sim, model: lorem }]
`;

let server: ObservedServer;
let client: Client<typeof LlmService>;
let before: Sample[];
let after: Sample[];
let afterBody: string;
let contentType: string | null;
let limitedKey: string;

async function scrape(): Promise<{ body: string; contentType: string | null }> {
  const res = await fetch(`${server.baseUrl}/metrics`);
  expect(res.status).toBe(200);
  return { body: await res.text(), contentType: res.headers.get("content-type") };
}

const ask = (content: string, extra: Record<string, unknown> = {}) =>
  create(GenerateRequestSchema, { model: "m", messages: [{ role: Role.USER, content }], ...extra });

async function failureCode(call: Promise<unknown>): Promise<Code> {
  try {
    await call;
  } catch (err) {
    return ConnectError.from(err).code;
  }
  throw new Error("expected the call to fail");
}

const GENERATE = "llm.v1.LlmService/Generate";
const STREAM = "llm.v1.LlmService/StreamGenerate";

beforeAll(async () => {
  server = await startObservedServer({}, { catalogue: CATALOGUE });
  limitedKey = (await server.app.keys.create({ name: "limited", tenant: "limited", limits: { requestsPerMinute: 1 } })).secret;
  const transport = (key: string) => createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1", interceptors: [bearer(key)] });
  client = createClient(LlmService, transport(server.key));
  const limited = createClient(LlmService, transport(limitedKey));
  const stranger = createClient(LlmService, transport("llm_nope_0000000000000000000000"));

  before = parsePrometheus((await scrape()).body);

  // 3 plain calls, answered upstream.
  for (const words of ["alpha beta", "gamma delta epsilon", "zeta eta theta iota"]) await client.generate(ask(words));
  // A deterministic call twice: a cache miss, then a hit.
  await client.generate(ask("cache me please", { temperature: 0 }));
  const hit = await client.generate(ask("cache me please", { temperature: 0 }));
  expect(hit.cached).toBe(true);
  // Retried once on m, fell back to m2, retried once there, failed.
  const failed = client.generate(ask("doomed call", { fallbackModels: ["m2"], metadata: { "sim-fail": "PROVIDER_UNAVAILABLE" }, cache: { mode: CacheMode.BYPASS } }));
  expect(await failureCode(failed)).toBe(Code.Unavailable);
  // A stream that takes at least 3 x 40 ms between its 4 tokens.
  const events = [];
  for await (const e of client.streamGenerate(
    create(StreamGenerateRequestSchema, { model: "m", messages: [{ role: Role.USER, content: "one two three four" }], metadata: { "sim-inter-token-ms": "40" } }),
  )) {
    events.push(e);
  }
  expect(events.length).toBeGreaterThan(4);
  // An unknown key, and a key over its one request per minute.
  expect(await failureCode(stranger.generate(ask("who am i")))).toBe(Code.Unauthenticated);
  await limited.generate(ask("first one passes"));
  expect(await failureCode(limited.generate(ask("second one is refused")))).toBe(Code.ResourceExhausted);

  await server.app.ledger.flush();
  const scraped = await scrape();
  afterBody = scraped.body;
  contentType = scraped.contentType;
  after = parsePrometheus(afterBody);
}, 60_000);

afterAll(async () => {
  await server?.close();
});

const delta = (name: string, labels: Record<string, string> = {}) => valueOf(after, name, labels) - valueOf(before, name, labels);

describe("GET /metrics", () => {
  it("answers in the Prometheus text format, with the expected metric types", () => {
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    const t = types(afterBody);
    expect(t.get("rpc_server_call_duration_seconds")).toBe("histogram");
    expect(t.get("gen_ai_client_token_usage")).toBe("histogram");
    expect(t.get("gen_ai_client_operation_duration_seconds")).toBe("histogram");
    expect(t.get("gen_ai_server_time_to_first_token_seconds")).toBe("histogram");
    expect(t.get("gen_ai_server_time_per_output_token_seconds")).toBe("histogram");
    expect(t.get("llm_gateway_cost_usd_total")).toBe("counter");
    expect(t.get("llm_gateway_circuit_state")).toBe("gauge");
    expect(t.get("llm_ledger_queue_depth")).toBe("gauge");
  });

  it("refuses other methods", async () => {
    const res = await fetch(`${server.baseUrl}/metrics`, { method: "POST" });
    expect(res.status).toBe(405);
  });

  it("counts RPCs by method and status code, and none is left in flight", () => {
    const rpc = (method: string, code: string) => delta("rpc_server_call_duration_seconds_count", { rpc_method: method, rpc_status_code: code, rpc_system_name: "connectrpc" });
    expect(rpc(GENERATE, "OK")).toBe(6);
    expect(rpc(GENERATE, "UNAVAILABLE")).toBe(1);
    expect(rpc(GENERATE, "UNAUTHENTICATED")).toBe(1);
    expect(rpc(GENERATE, "RESOURCE_EXHAUSTED")).toBe(1);
    expect(rpc(STREAM, "OK")).toBe(1);
    expect(valueOf(after, "rpc_server_active_calls", { rpc_method: GENERATE })).toBe(0);
    expect(valueOf(after, "rpc_server_active_calls", { rpc_method: STREAM })).toBe(0);
  });

  it("times a stream to its end, not to its first message", () => {
    const seconds = delta("rpc_server_call_duration_seconds_sum", { rpc_method: STREAM });
    expect(seconds).toBeGreaterThanOrEqual(0.12);
    // Its last bucket edges: at most one observation in the buckets below 0.1 s.
    expect(delta("rpc_server_call_duration_seconds_bucket", { rpc_method: STREAM, le: "0.1" })).toBe(0);
  });

  it("counts generations by outcome, cache lookups, retries and fallbacks", () => {
    expect(delta("llm_gateway_requests_total", { model: "m", provider: "sim", status: "ok", cached: "false" })).toBe(6);
    expect(delta("llm_gateway_requests_total", { model: "m", status: "ok", cached: "true" })).toBe(1);
    expect(delta("llm_gateway_requests_total", { status: "failed", reason: "PROVIDER_UNAVAILABLE" })).toBe(1);
    expect(delta("llm_gateway_requests_total", { status: "failed", reason: "RATE_LIMITED" })).toBe(1);
    expect(delta("llm_gateway_cache_lookups_total", { model: "m", result: "miss" })).toBe(1);
    expect(delta("llm_gateway_cache_lookups_total", { model: "m", result: "hit" })).toBe(1);
    expect(delta("llm_gateway_retries_total", { provider: "sim", deployment: "echo", reason: "PROVIDER_UNAVAILABLE" })).toBe(1);
    expect(delta("llm_gateway_retries_total", { provider: "sim", deployment: "lorem", reason: "PROVIDER_UNAVAILABLE" })).toBe(1);
    expect(delta("llm_gateway_fallbacks_total", { from: "sim/echo", reason: "PROVIDER_UNAVAILABLE" })).toBe(1);
    expect(delta("llm_gateway_limit_refusals_total", { reason: "RATE_LIMITED", limit: "requests_per_minute", scope: "key" })).toBe(1);
  });

  it("observes every upstream attempt's duration, failed ones by error type, and tokens per successful one", () => {
    const op = (labels: Record<string, string>) => delta("gen_ai_client_operation_duration_seconds_count", { gen_ai_operation_name: "chat", gen_ai_provider_name: "sim", ...labels });
    expect(op({ gen_ai_request_model: "echo", error_type: "" })).toBe(6);
    expect(op({ gen_ai_request_model: "echo", error_type: "PROVIDER_UNAVAILABLE" })).toBe(2);
    expect(op({ gen_ai_request_model: "lorem", error_type: "PROVIDER_UNAVAILABLE" })).toBe(2);
    expect(delta("gen_ai_client_token_usage_count", { gen_ai_request_model: "echo", gen_ai_token_type: "output" })).toBe(6);
    expect(delta("gen_ai_client_token_usage_count", { gen_ai_request_model: "echo", gen_ai_token_type: "input" })).toBe(6);
  });

  it("agrees with the ledger on tokens and cost by tenant and model", async () => {
    const rows = await server.app.database.db.selectFrom("generations").select(["tenant", "model", "provider", "cached", "input_tokens", "output_tokens", "cost_usd_nanos"]).execute();
    expect(rows).toHaveLength(9);
    const ours = rows.filter((r) => r.tenant === "acme" && r.model === "m");
    // What the ledger bills: calls answered or attempted upstream (the failed one is charged its input), not cache hits.
    const billed = ours.filter((r) => !r.cached && (r.provider !== "" || BigInt(r.cost_usd_nanos) > 0n));
    expect(billed).toHaveLength(6);
    const sum = (f: (r: (typeof rows)[number]) => number) => billed.reduce((s, r) => s + f(r), 0);
    const outputTokens = sum((r) => r.output_tokens);
    expect(outputTokens).toBeGreaterThan(0);
    expect(delta("llm_gateway_tokens_total", { tenant: "acme", model: "m", type: "input" })).toBe(sum((r) => r.input_tokens));
    expect(delta("llm_gateway_tokens_total", { tenant: "acme", model: "m", type: "output" })).toBe(outputTokens);
    // The successful upstream answers' output tokens, as the token-usage histogram saw them (the failed call produced none).
    expect(delta("gen_ai_client_token_usage_sum", { gen_ai_request_model: "echo", gen_ai_token_type: "output", gen_ai_provider_name: "sim" })).toBe(
      rows.filter((r) => r.model === "m" && !r.cached && r.output_tokens > 0).reduce((s, r) => s + r.output_tokens, 0),
    );
    const costUsd = ours.reduce((s, r) => s + Number(r.cost_usd_nanos), 0) / 1e9;
    expect(costUsd).toBeGreaterThan(0);
    expect(delta("llm_gateway_cost_usd_total", { tenant: "acme", model: "m" })).toBeCloseTo(costUsd, 9);
    expect(delta("llm_ledger_rows_written_total")).toBe(9);
    expect(valueOf(after, "llm_ledger_queue_depth")).toBe(0);
    expect(valueOf(after, "llm_ledger_spooled_records")).toBe(0);
  });

  it("observes time to first token and time per output token for answers from a provider only", () => {
    const labels = { gen_ai_provider_name: "sim", gen_ai_request_model: "m" };
    expect(delta("gen_ai_server_time_to_first_token_seconds_count", labels)).toBe(6);
    expect(delta("gen_ai_server_time_per_output_token_seconds_count", labels)).toBe(6);
    // The stream spent >= 3 x 40 ms after its first token over 3 more tokens: >= 40 ms per token in that observation.
    expect(delta("gen_ai_server_time_per_output_token_seconds_sum", labels)).toBeGreaterThanOrEqual(0.04);
  });

  it("shows each deployment's circuit closed and Redis not in fallback", () => {
    expect(after.find((s) => s.name === "llm_gateway_circuit_state" && s.labels["deployment"] === "echo")?.value).toBe(0);
    expect(after.find((s) => s.name === "llm_gateway_circuit_state" && s.labels["deployment"] === "lorem")?.value).toBe(0);
    expect(valueOf(after, "llm_redis_fallback_active")).toBe(0);
  });

  it("uses no unbounded label values: no request ids, keys or prompt text", () => {
    for (const secret of [server.key, limitedKey, "alpha beta", "doomed call"]) expect(afterBody).not.toContain(secret);
    expect(afterBody).not.toMatch(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/);
  });
});
