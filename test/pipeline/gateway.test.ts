/**
 * The call pipeline in memory: a real Router over the sim provider, no server, no database. What
 * each stage does to the events a caller sees and to the one usage record the call leaves.
 */
import { describe, expect, it } from "vitest";
import type { CachedGeneration, ResponseCache } from "../../src/cache/response-cache.js";
import { parseCatalogue } from "../../src/config.js";
import { TokenCounter } from "../../src/core/token-counter.js";
import type { CallContext, GenerationEvent, GenerationRequest, UsageRecord } from "../../src/core/types.js";
import { MemoryLimiter } from "../../src/limits/memory-limiter.js";
import type { FinishSummary } from "../../src/pipeline/call-observer.js";
import { Gateway } from "../../src/pipeline/gateway.js";
import type { AttemptOptions } from "../../src/providers/provider.js";
import { SimProvider } from "../../src/providers/sim/sim-provider.js";
import { Catalogue } from "../../src/router/catalogue.js";
import { Router } from "../../src/router/router.js";

const catalogue = new Catalogue(
  parseCatalogue({
    routing: { maxAttempts: 1 },
    models: [
      {
        id: "sim-echo",
        contextWindow: 10_000,
        maxOutputTokens: 100,
        price: { inputPerMillion: 1_000, outputPerMillion: 2_000 },
        tokenizer: "approx",
        deployments: [{ provider: "sim", model: "echo" }],
      },
    ],
  }),
);

/** The sim provider, counting upstream calls and keeping each call's signal. */
class CountingSim extends SimProvider {
  calls = 0;
  signals: AbortSignal[] = [];
  override generate(...args: Parameters<SimProvider["generate"]>) {
    this.calls++;
    this.signals.push((args[2] as AttemptOptions).signal);
    return super.generate(...args);
  }
}

function setup(options: { cache?: boolean; limiter?: MemoryLimiter } = {}) {
  const sim = new CountingSim();
  const records: UsageRecord[] = [];
  const summaries: FinishSummary[] = [];
  const store = new Map<string, CachedGeneration>();
  const cache: ResponseCache = {
    get: (key) => Promise.resolve(store.get(key)),
    set: (key, value) => {
      store.set(key, value);
      return Promise.resolve();
    },
    close: () => Promise.resolve(),
  };
  const gateway = new Gateway({
    catalogue,
    router: new Router(catalogue, new Map([["sim", sim]])),
    usageSink: { record: (r: UsageRecord) => void records.push(r) } as never,
    usageSource: { usage: () => Promise.reject(new Error("unused")) },
    tokens: new TokenCounter([]),
    ...(options.cache ? { cache } : {}),
    ...(options.limiter ? { limiter: options.limiter } : {}),
    onFinish: (s) => summaries.push(s),
  });
  return { gateway, sim, records, summaries, store };
}

const request = (content: string, over: Partial<GenerationRequest> = {}): GenerationRequest => ({
  model: "sim-echo",
  system: "",
  messages: [{ role: "user", content }],
  stop: [],
  metadata: {},
  fallbackModels: [],
  idempotencyKey: "",
  cache: { mode: "default", ttlSeconds: 0 },
  ...over,
});

let ids = 0;
const context = (over: Partial<CallContext> = {}): CallContext => ({
  requestId: `req-${++ids}`,
  principal: { keyId: "key", name: "key", tenant: "tenant", role: "user", limits: { tokensPerMinute: 1_000_000 } },
  signal: new AbortController().signal,
  deadline: Date.now() + 10_000,
  ...over,
});

const identity = { map: (e: GenerationEvent) => e };

describe("the call pipeline, in memory", () => {
  it("streams started, one delta per upstream token, then completed, and leaves one ok record", async () => {
    const { gateway, records } = setup();
    const events: GenerationEvent[] = [];
    for await (const e of gateway.stream(request("one two three"), context(), identity)) events.push(e);
    expect(events.map((e) => e.type)).toEqual(["started", "delta", "delta", "delta", "completed"]);
    expect(events.filter((e) => e.type === "delta").map((e) => (e as { text: string }).text).join("")).toBe("one two three");
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ status: "ok", provider: "sim", outputTokens: 3, cached: false, attempts: [expect.objectContaining({ reason: "OK" })] });
    expect(records[0]?.costUsdNanos).toBeGreaterThan(0n);
  });

  it("writes the record before the stream ends: the consumer sees the end only once the row is written", async () => {
    const { gateway, records } = setup();
    const recordsAtEnd: number[] = [];
    const it = gateway.stream(request("a b"), context(), identity);
    for (;;) {
      const step = await it.next();
      if (step.done === true) {
        recordsAtEnd.push(records.length);
        break;
      }
    }
    expect(recordsAtEnd).toEqual([1]);
  });

  it("a consumer that stops reading cancels the upstream call and the record says cancelled", async () => {
    const { gateway, sim, records, summaries } = setup();
    const stream = gateway.stream(request("a b c d e f", { metadata: { "sim-inter-token-ms": "50" } }), context(), identity);
    for await (const e of stream) if (e.type === "delta") break;
    await vitestWaitFor(() => records.length === 1);
    expect(sim.signals[0]?.aborted).toBe(true);
    expect(records[0]).toMatchObject({ status: "cancelled", errorReason: "CANCELLED", outputTokens: 1 });
    expect(summaries[0]?.status).toBe("cancelled");
  });

  it("a failure after some tokens ends the stream with the error, after those tokens; the record has the attempt", async () => {
    const { gateway, records } = setup();
    const texts: string[] = [];
    const stream = gateway.stream(request("a b c d", { metadata: { "sim-fail": "PROVIDER_UNAVAILABLE", "sim-fail-after": "2" } }), context(), identity);
    await expect(
      (async () => {
        for await (const e of stream) if (e.type === "delta") texts.push(e.text);
      })(),
    ).rejects.toMatchObject({ reason: "PROVIDER_UNAVAILABLE" });
    expect(texts).toEqual(["a ", "b "]);
    expect(records[0]).toMatchObject({ status: "failed", errorReason: "PROVIDER_UNAVAILABLE", outputTokens: 2 });
    expect(records[0]?.attempts.map((a) => a.reason)).toEqual(["PROVIDER_UNAVAILABLE"]);
  });

  it("refuses at admission without an upstream call, and still records the call", async () => {
    const { gateway, sim, records } = setup();
    await expect(gateway.generate(request("x", { model: "nope" }), context())).rejects.toMatchObject({ reason: "MODEL_NOT_FOUND" });
    expect(sim.calls).toBe(0);
    expect(records[0]).toMatchObject({ status: "failed", errorReason: "MODEL_NOT_FOUND", model: "nope", costUsdNanos: 0n });
  });

  it("identical cacheable unary calls in flight share one upstream call; the joiner is answered as cached", async () => {
    const { gateway, sim, records } = setup({ cache: true });
    const deterministic = request("same prompt", { temperature: 0, metadata: { "sim-inter-token-ms": "5" } });
    const [a, b] = await Promise.all([gateway.generate(deterministic, context()), gateway.generate(deterministic, context())]);
    expect(sim.calls).toBe(1);
    expect(gateway.singleFlightJoins).toBe(1);
    expect(a.text).toBe(b.text);
    expect([a.cached, b.cached].sort()).toEqual([false, true]);
    expect(records.map((r) => r.costUsdNanos > 0n).sort()).toEqual([false, true]);
  });

  it("answers a repeat from the cache without the upstream, with the stream's pieces", async () => {
    const { gateway, sim, records, store } = setup({ cache: true });
    const deterministic = request("cache me please", { temperature: 0 });
    const first: GenerationEvent[] = [];
    for await (const e of gateway.stream(deterministic, context(), identity)) first.push(e);
    await vitestWaitFor(() => store.size === 1);
    const second: GenerationEvent[] = [];
    for await (const e of gateway.stream(deterministic, context(), identity)) second.push(e);
    expect(sim.calls).toBe(1);
    expect(second.filter((e) => e.type === "delta")).toEqual(first.filter((e) => e.type === "delta"));
    expect(second.at(-1)).toMatchObject({ type: "completed", cached: true, costUsdNanos: 0n });
    expect(records[1]).toMatchObject({ cached: true, costUsdNanos: 0n });
  });

  it("settles the limits ticket with what the call spent", async () => {
    const limiter = new MemoryLimiter();
    const { gateway, records } = setup({ limiter });
    await gateway.generate(request("count these tokens"), context());
    const spent = (records[0]?.inputTokens ?? 0) + (records[0]?.outputTokens ?? 0);
    // The next admission sees the settled spend, not the reservation (prompt + max output).
    const principal = { keyId: "key", name: "key", tenant: "tenant", role: "user" as const, limits: { tokensPerMinute: spent + 10 } };
    await expect(gateway.generate(request("x", { maxOutputTokens: 1 }), context({ principal }))).resolves.toBeDefined();
  });
});

describe("structured output, in memory", () => {
  const schemaJson = JSON.stringify({ type: "object", properties: { city: { type: "string" }, people: { type: "integer" } }, required: ["city", "people"] });
  const format = (passThroughMismatch = false) => ({ type: "json_schema" as const, name: "census", schemaJson, strict: true, passThroughMismatch });

  it("answers JSON that matches the schema, and caches it", async () => {
    const { gateway, store } = setup({ cache: true });
    const result = await gateway.generate(request("census", { temperature: 0, responseFormat: format() }), context());
    expect(JSON.parse(result.text)).toMatchObject({ city: expect.any(String), people: expect.any(Number) });
    await vitestWaitFor(() => store.size === 1);
  });

  it("a unary mismatch is OUTPUT_SCHEMA_MISMATCH with the path; the record is failed with its tokens priced; nothing is cached", async () => {
    const { gateway, records, store } = setup({ cache: true });
    const req = request("census", { temperature: 0, responseFormat: format(), metadata: { "sim-json": "invalid" } });
    await expect(gateway.generate(req, context())).rejects.toMatchObject({
      reason: "OUTPUT_SCHEMA_MISMATCH",
      fieldViolations: [{ field: "/city", description: "must be string" }],
    });
    expect(records[0]).toMatchObject({ status: "failed", errorReason: "OUTPUT_SCHEMA_MISMATCH" });
    expect(records[0]?.outputTokens).toBeGreaterThan(0);
    expect(records[0]?.costUsdNanos).toBeGreaterThan(0n);
    expect(store.size).toBe(0);
  });

  it("a streamed mismatch sends the deltas, then ends with the error instead of completed", async () => {
    const { gateway, records } = setup({ cache: true });
    const events: GenerationEvent[] = [];
    const stream = gateway.stream(request("census", { responseFormat: format(), metadata: { "sim-json": "not-json" } }), context(), identity);
    await expect(
      (async () => {
        for await (const e of stream) events.push(e);
      })(),
    ).rejects.toMatchObject({ reason: "OUTPUT_SCHEMA_MISMATCH", fieldViolations: [{ field: "", description: "must be JSON text" }] });
    expect(events[0]?.type).toBe("started");
    expect(events.filter((e) => e.type === "delta").length).toBeGreaterThan(1);
    expect(events.some((e) => e.type === "completed")).toBe(false);
    expect(records[0]).toMatchObject({ status: "failed", errorReason: "OUTPUT_SCHEMA_MISMATCH" });
  });

  it("an adapter's refusal before any upstream call (INVALID_REQUEST, e.g. a format its vendor lacks) costs nothing", async () => {
    const { gateway, records } = setup();
    await expect(gateway.generate(request("census", { metadata: { "sim-fail": "INVALID_REQUEST" } }), context())).rejects.toMatchObject({ reason: "INVALID_REQUEST" });
    expect(records[0]).toMatchObject({ status: "failed", errorReason: "INVALID_REQUEST", costUsdNanos: 0n });
  });

  it("passes a mismatch through when asked, and never caches it", async () => {
    const { gateway, sim, store } = setup({ cache: true });
    const req = request("census", { temperature: 0, responseFormat: format(true), metadata: { "sim-json": "invalid" } });
    const first = await gateway.generate(req, context());
    expect(JSON.parse(first.text)).toMatchObject({ city: 12345 });
    const second = await gateway.generate(req, context());
    expect(second.cached).toBe(false);
    expect(sim.calls).toBe(2);
    expect(store.size).toBe(0);
  });
});

/** Resolves once `check` holds, polling on the event loop's turns (bounded to 2 s). */
async function vitestWaitFor(check: () => boolean): Promise<void> {
  const until = Date.now() + 2_000;
  while (!check()) {
    if (Date.now() > until) throw new Error("condition not met within 2 s");
    await new Promise((resolve) => setImmediate(resolve));
  }
}
