import { describe, expect, it } from "vitest";
import { parseCatalogue } from "../../src/config.js";
import { LlmError } from "../../src/errors/llm-error.js";
import type { ErrorReason } from "../../src/errors/taxonomy.js";
import type { Provider, ProviderEvent } from "../../src/providers/provider.js";
import { Catalogue } from "../../src/router/catalogue.js";
import { Router, type RouterEvent } from "../../src/router/router.js";
import { routeEvents, streamProvider, type RouteTrace } from "../helpers/route.js";

/** One scripted upstream call: fail with a reason (after n tokens), or succeed. */
type Step = { fail: ErrorReason; retryAfterMs?: number; afterTokens?: number } | "ok";

function scripted(name: string, steps: Step[]): Provider & { calls: number } {
  const p = streamProvider({
    name,
    calls: 0,
    async *stream(): AsyncGenerator<ProviderEvent> {
      const step = steps[Math.min(p.calls, steps.length - 1)] ?? "ok";
      p.calls++;
      if (step === "ok") {
        yield { type: "delta", text: "ok" };
        yield { type: "done", finishReason: "stop", usage: { inputTokens: 1, outputTokens: 1 } };
        return;
      }
      for (let i = 0; i < (step.afterTokens ?? 0); i++) yield { type: "delta", text: "t" };
      throw new LlmError(step.fail, "scripted", step.retryAfterMs !== undefined ? { retryAfterMs: step.retryAfterMs } : {});
    },
  });
  return p;
}

function setup(primary: Provider, opts: { fallback?: Provider; routing?: object } = {}) {
  let clock = 1_000_000;
  const sleeps: number[] = [];
  const events: RouterEvent[] = [];
  const catalogue = new Catalogue(
    parseCatalogue({
      routing: { maxAttempts: 3, backoffBaseMs: 100, backoffCapMs: 1000, breaker: { minCalls: 3, failureRatio: 0.5, windowMs: 10_000, openMs: 5_000 }, ...opts.routing },
      models: [
        {
          id: "m",
          contextWindow: 100,
          maxOutputTokens: 10,
          deployments: [{ provider: "openai", model: "gpt" }],
          fallbacks: opts.fallback ? ["f"] : [],
        },
        { id: "f", contextWindow: 100, maxOutputTokens: 10, deployments: [{ provider: "anthropic", model: "claude" }] },
      ],
    }),
  );
  const providers = new Map<string, Provider>([["openai", primary]]);
  if (opts.fallback) providers.set("anthropic", opts.fallback);
  const router = new Router(catalogue, providers, {
    now: () => clock,
    random: () => 0.5,
    sleep: async (ms) => {
      sleeps.push(ms);
      clock += ms;
    },
    onEvent: (e) => events.push(e),
  });
  const run = async (deadlineIn = 10_000) => {
    const state: RouteTrace = { provider: "", attempts: [], committed: false };
    let text = "";
    const events = routeEvents(router, router.plan(catalogue.resolve("m")!, []), () => ({ system: "", messages: [], maxOutputTokens: 10, stop: [], metadata: {} }), state, {
      signal: new AbortController().signal,
      deadline: clock + deadlineIn,
    });
    try {
      for await (const e of events) if (e.type === "delta") text += e.text;
      return { text, state };
    } catch (err) {
      return { error: err as LlmError, state, text };
    }
  };
  return { router, run, sleeps, events, advance: (ms: number) => (clock += ms), catalogue };
}

describe("router retries", () => {
  it("retries a 503 with full-jitter backoff, then succeeds", async () => {
    const p = scripted("openai", [{ fail: "PROVIDER_UNAVAILABLE" }, { fail: "PROVIDER_UNAVAILABLE" }, "ok"]);
    const { run, sleeps } = setup(p);
    const r = await run();
    expect(r.text).toBe("ok");
    expect(p.calls).toBe(3);
    // random() = 0.5: half of base * 2^(retry-1).
    expect(sleeps).toEqual([50, 100]);
    expect(r.state.attempts.map((a) => a.reason)).toEqual(["PROVIDER_UNAVAILABLE", "PROVIDER_UNAVAILABLE", "OK"]);
  });

  it("gives up after maxAttempts with the last reason and every attempt recorded", async () => {
    const p = scripted("openai", [{ fail: "PROVIDER_UNAVAILABLE" }]);
    const { run } = setup(p);
    const r = await run();
    expect(p.calls).toBe(3);
    expect(r.error?.reason).toBe("PROVIDER_UNAVAILABLE");
    expect(r.error?.attempts).toHaveLength(3);
  });

  it("honours Retry-After instead of its own backoff", async () => {
    const p = scripted("openai", [{ fail: "PROVIDER_RATE_LIMITED", retryAfterMs: 700 }, "ok"]);
    const { run, sleeps } = setup(p);
    expect((await run()).text).toBe("ok");
    expect(sleeps).toEqual([700]);
  });

  it("a Retry-After longer than the time left ends at once with the reason and RetryInfo", async () => {
    const p = scripted("openai", [{ fail: "PROVIDER_RATE_LIMITED", retryAfterMs: 30_000 }, "ok"]);
    const { run, sleeps } = setup(p);
    const r = await run(2_000);
    expect(sleeps).toEqual([]);
    expect(p.calls).toBe(1);
    expect(r.error?.reason).toBe("PROVIDER_RATE_LIMITED");
    expect(r.error?.retryAfterMs).toBe(30_000);
  });

  it("does not back off past the deadline", async () => {
    const p = scripted("openai", [{ fail: "PROVIDER_UNAVAILABLE" }]);
    const { run, sleeps } = setup(p, { routing: { backoffBaseMs: 5_000, backoffCapMs: 5_000 } });
    const r = await run(1_000);
    expect(p.calls).toBe(1);
    expect(sleeps).toEqual([]);
    expect(r.error?.reason).toBe("PROVIDER_UNAVAILABLE");
  });

  it("never retries a provider's rejection of the request", async () => {
    const p = scripted("openai", [{ fail: "PROVIDER_REJECTED" }, "ok"]);
    const { run } = setup(p);
    expect((await run()).error?.reason).toBe("PROVIDER_REJECTED");
    expect(p.calls).toBe(1);
  });

  it("never retries after the first token went out: the stream ends in an error", async () => {
    const p = scripted("openai", [{ fail: "PROVIDER_UNAVAILABLE", afterTokens: 2 }, "ok"]);
    const fb = scripted("anthropic", ["ok"]);
    const { run } = setup(p, { fallback: fb });
    const r = await run();
    expect(r.text).toBe("tt");
    expect(r.error?.reason).toBe("PROVIDER_UNAVAILABLE");
    expect(p.calls).toBe(1);
    expect(fb.calls).toBe(0);
  });

  it("falls back to another provider's model after the first is exhausted", async () => {
    const p = scripted("openai", [{ fail: "PROVIDER_UNAVAILABLE" }]);
    const fb = scripted("anthropic", ["ok"]);
    const { run, events } = setup(p, { fallback: fb });
    const r = await run();
    expect(r.text).toBe("ok");
    expect(r.state.model?.id).toBe("f");
    expect(events.some((e) => e.type === "fallback")).toBe(true);
  });

  it("opens the circuit after failures, fails fast with CIRCUIT_OPEN, and closes after a good probe", async () => {
    const p = scripted("openai", [{ fail: "PROVIDER_UNAVAILABLE" }, { fail: "PROVIDER_UNAVAILABLE" }, { fail: "PROVIDER_UNAVAILABLE" }, "ok"]);
    const { run, router, catalogue, advance, events } = setup(p, { routing: { maxAttempts: 1 } });
    const deployment = catalogue.resolve("m")!.deployments[0]!;
    for (let i = 0; i < 3; i++) expect((await run()).error?.reason).toBe("PROVIDER_UNAVAILABLE");
    expect(router.circuitState(deployment)).toBe("open");
    const fast = await run();
    expect(fast.error?.reason).toBe("CIRCUIT_OPEN");
    expect(fast.error?.retryAfterMs).toBe(5_000);
    expect(p.calls).toBe(3);
    advance(5_000);
    expect(router.circuitState(deployment)).toBe("half_open");
    expect((await run()).text).toBe("ok");
    expect(router.circuitState(deployment)).toBe("closed");
    expect(events.filter((e) => e.type === "circuit").map((e) => (e.type === "circuit" ? e.to : ""))).toEqual(["open", "half_open", "closed"]);
  });

  it("a failed half-open probe re-opens the circuit", async () => {
    const p = scripted("openai", [{ fail: "PROVIDER_TIMEOUT" }]);
    const { run, router, catalogue, advance } = setup(p, { routing: { maxAttempts: 1 } });
    const deployment = catalogue.resolve("m")!.deployments[0]!;
    for (let i = 0; i < 3; i++) await run();
    advance(5_000);
    await run();
    expect(router.circuitState(deployment)).toBe("open");
    expect(p.calls).toBe(4);
  });

  it("asks the breaker again before a retry: once concurrent failures open it, no call retries", async () => {
    // Both first attempts are in flight together and fail together, opening the breaker.
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let entered = 0;
    let calls = 0;
    const p: Provider = streamProvider({
      name: "openai",
      async *stream(): AsyncGenerator<ProviderEvent> {
        calls++;
        if (++entered === 2) release();
        await gate;
        throw new LlmError("PROVIDER_UNAVAILABLE", "scripted");
      },
    });
    const { run, router, catalogue } = setup(p, {
      routing: { maxAttempts: 3, breaker: { minCalls: 2, failureRatio: 0.5, windowMs: 10_000, openMs: 5_000 }, retryBudget: { maxTokens: 1000 } },
    });
    const results = await Promise.all([run(), run()]);
    expect(results.map((r) => r.error?.reason)).toEqual(["PROVIDER_UNAVAILABLE", "PROVIDER_UNAVAILABLE"]);
    expect(router.circuitState(catalogue.resolve("m")!.deployments[0]!)).toBe("open");
    expect(calls).toBe(2);
    expect(results.map((r) => r.state.attempts.length)).toEqual([1, 1]);
  });

  it("spends its retry budget while attempts fail, then makes one attempt per call until successes refill it", async () => {
    const fail = { fail: "PROVIDER_UNAVAILABLE" as const };
    const p = scripted("openai", [fail, fail, fail, fail, "ok", "ok", fail, "ok", "ok", "ok", fail, fail, "ok"]);
    // The breaker never opens here, so only the budget (4 tokens, 1 back per success) limits retries.
    const { run } = setup(p, { routing: { maxAttempts: 3, breaker: { minCalls: 100_000 }, retryBudget: { maxTokens: 4, tokenRatio: 1 } } });
    const attemptsOf = async () => (await run()).state.attempts.map((a) => a.reason);
    // 4 -> 3 (more than half: retry) -> 2 (half: no retry)
    expect(await attemptsOf()).toEqual(["PROVIDER_UNAVAILABLE", "PROVIDER_UNAVAILABLE"]);
    // 2 -> 1, 1 -> 0: one attempt each
    expect(await attemptsOf()).toEqual(["PROVIDER_UNAVAILABLE"]);
    expect(await attemptsOf()).toEqual(["PROVIDER_UNAVAILABLE"]);
    // Two successes, 0 -> 2, are not enough for the next failure (2 -> 1) to be retried.
    expect(await attemptsOf()).toEqual(["OK"]);
    expect(await attemptsOf()).toEqual(["OK"]);
    expect(await attemptsOf()).toEqual(["PROVIDER_UNAVAILABLE"]);
    // Three more, 1 -> 4, and a failure is retried again (4 -> 3, retry; 3 -> 2, none; the breaker's limit is not reached).
    for (let i = 0; i < 3; i++) expect(await attemptsOf()).toEqual(["OK"]);
    expect(await attemptsOf()).toEqual(["PROVIDER_UNAVAILABLE", "PROVIDER_UNAVAILABLE"]);
    expect(p.calls).toBe(12);
  });
});
