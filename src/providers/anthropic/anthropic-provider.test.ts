/**
 * The Anthropic adapter with the real `@anthropic-ai/sdk` against the upstream simulator
 * (Messages wire: SSE events, usage in message_start/message_delta, error bodies, Retry-After),
 * over the pooled fetch of providers/http.ts.
 */
import { describe, expect, it } from "vitest";
import { LlmError } from "../../errors/llm-error.js";
import type { ErrorReason } from "../../errors/taxonomy.js";
import { AnthropicProvider } from "../../providers/anthropic/anthropic-provider.js";
import { providerHarness, req, type Outcome } from "../../../test/helpers/provider-harness.js";
import { providerEvents } from "../../../test/helpers/provider-events.js";

const KEY = "sk-ant-test-0123456789-secret";
const h = providerHarness({
  provider: "anthropic",
  model: "sim-claude",
  tagPrefix: "an",
  simulator: { apiKey: KEY },
  create: (sim, fetch) => new AnthropicProvider({ defaults: { apiKey: KEY, baseUrl: sim.url }, credentials: new Map(), fetch }),
});
const { deployment, run, nextRequest } = h;

h.describeTransports("anthropic adapter", () => {
  it("collects the same completion the unary JSON API returns (text and usage)", async () => {
    const res = await h.http.fetch(`${h.sim.url}/v1/messages`, {
      method: "POST",
      headers: { "x-api-key": KEY, "anthropic-version": "2023-06-01", "content-type": "application/json" },
      body: JSON.stringify({ model: "sim-claude", messages: [{ role: "user", content: "tell me a story" }], max_tokens: 1000 }),
    });
    const unary = (await res.json()) as { content: { text: string }[]; stop_reason: string; usage: { input_tokens: number; output_tokens: number } };
    const out = await run(deployment(), req("tell me a story"));
    expect(out.deltas.length).toBeGreaterThan(1);
    expect(out.deltas.join("")).toBe(unary.content[0]?.text);
    expect(unary.stop_reason).toBe("end_turn");
    expect(out.done).toEqual({
      type: "done",
      finishReason: "stop",
      usage: { inputTokens: unary.usage.input_tokens, outputTokens: unary.usage.output_tokens },
    });
  });

  it("streams text deltas, with input tokens from message_start and output tokens from message_delta", async () => {
    const seen = nextRequest();
    const out = await run(deployment({ text: "echo" }), req("alpha beta gamma delta", { system: "be brief" }));
    expect(out.error).toBeUndefined();
    expect(out.deltas.join("")).toBe("alpha beta gamma delta");
    expect(out.deltas.length).toBe(4);
    expect(out.done).toEqual({ type: "done", finishReason: "stop", usage: { inputTokens: 6, outputTokens: 4 } });
    const info = await seen;
    expect(info.body).toMatchObject({
      model: "sim-claude",
      stream: true,
      max_tokens: 1000,
      system: "be brief",
      messages: [{ role: "user", content: "alpha beta gamma delta" }],
    });
    expect(typeof info.headers["anthropic-version"]).toBe("string");
  });

  it("adds cache reads and writes to the input, as its parts, and reports thinking tokens", async () => {
    const d = deployment({ text: "echo", "cached-tokens": "3", "cache-write-tokens": "2", "reasoning-tokens": "5" });
    const out = await run(d, req("alpha beta gamma delta", { system: "be brief" }));
    expect(out.error).toBeUndefined();
    // On the wire: input_tokens 1, cache_read 3, cache_creation 2; output 4 text + 5 thinking.
    expect(out.done).toEqual({
      type: "done",
      finishReason: "stop",
      usage: { inputTokens: 6, outputTokens: 9, cachedInputTokens: 3, cacheWriteInputTokens: 2, reasoningTokens: 5 },
    });
  });

  it("sends system turns in the top-level system, stop_sequences, temperature and top_p", async () => {
    const seen = nextRequest();
    await run(
      deployment({ text: "echo" }),
      req("", {
        system: "rule one",
        messages: [
          { role: "system", content: "rule two" },
          { role: "user", content: "hello there" },
        ],
        stop: ["END"],
        temperature: 0.3,
        topP: 0.9,
        maxOutputTokens: 9,
      }),
    );
    const body = (await seen).body as Record<string, unknown>;
    expect(body).toMatchObject({ system: "rule one\n\nrule two", stop_sequences: ["END"], temperature: 0.3, top_p: 0.9, max_tokens: 9 });
    expect(body.messages).toEqual([{ role: "user", content: "hello there" }]);
  });

  it("leaves out temperature and top_p when the deployment says samplingParams: false", async () => {
    const d = deployment({ text: "echo" });
    d.options.samplingParams = false;
    const seen = nextRequest();
    const out = await run(d, req("hi there", { temperature: 0.3, topP: 0.9 }));
    expect(out.done?.finishReason).toBe("stop");
    const body = (await seen).body as Record<string, unknown>;
    expect(body.temperature).toBeUndefined();
    expect(body.top_p).toBeUndefined();
  });

  it("reports finish reason length (max_tokens) when max output tokens cut the completion", async () => {
    const out = await run(deployment({ "output-tokens": "20" }), req("write a lot", { maxOutputTokens: 3 }));
    expect(out.deltas.length).toBe(3);
    expect(out.done?.finishReason).toBe("length");
    expect(out.done?.usage.outputTokens).toBe(3);
  });

  it("reports finish reason stop for a stop sequence", async () => {
    const out = await run(deployment({ text: "echo" }), req("red green STOP blue", { stop: ["STOP"] }));
    expect(out.deltas.join("")).toBe("red green ");
    expect(out.done?.finishReason).toBe("stop");
  });

  it("fails with PROVIDER_AUTH_FAILED before any request when no key is configured", async () => {
    const p = new AnthropicProvider({ defaults: { baseUrl: h.sim.url }, credentials: new Map(), fetch: h.fetch });
    const before = h.sim.stats.requests["/v1/messages"] ?? 0;
    const out = await run(deployment(), req("hi"), undefined, undefined, p);
    expect(out.error?.reason).toBe("PROVIDER_AUTH_FAILED");
    expect(h.sim.stats.requests["/v1/messages"] ?? 0).toBe(before);
  });

  it("uses a deployment's own key (apiKeyEnv) over the default", async () => {
    const p = new AnthropicProvider({ defaults: { apiKey: "sk-ant-wrong", baseUrl: h.sim.url }, credentials: new Map([["TEAM_KEY", KEY]]), fetch: h.fetch });
    const out = await run(deployment({ text: "echo" }, { apiKeyEnv: "TEAM_KEY" }), req("hello there"), undefined, undefined, p);
    expect(out.done?.finishReason).toBe("stop");
  });

  describe("maps every upstream failure to the taxonomy", () => {
    const cases: { name: string; knobs: Record<string, string>; reason: ErrorReason; retryAfterMs?: number }[] = [
      { name: "429 rate_limit_error with Retry-After", knobs: { status: "429", "retry-after": "3" }, reason: "PROVIDER_RATE_LIMITED", retryAfterMs: 3000 },
      { name: "529 overloaded_error", knobs: { status: "529" }, reason: "PROVIDER_UNAVAILABLE" },
      { name: "529 overloaded_error with Retry-After", knobs: { status: "529", "retry-after": "1" }, reason: "PROVIDER_UNAVAILABLE", retryAfterMs: 1000 },
      { name: "500 api_error", knobs: { status: "500" }, reason: "PROVIDER_UNAVAILABLE" },
      { name: "503", knobs: { status: "503" }, reason: "PROVIDER_UNAVAILABLE" },
      { name: "400 invalid_request_error", knobs: { status: "400" }, reason: "PROVIDER_REJECTED" },
      { name: "404 not_found_error", knobs: { status: "404" }, reason: "PROVIDER_REJECTED" },
      { name: "403 permission_error", knobs: { status: "403" }, reason: "PROVIDER_AUTH_FAILED" },
      { name: "a connection reset", knobs: { fault: "reset" }, reason: "PROVIDER_UNAVAILABLE" },
    ];
    for (const c of cases) {
      it(`${c.name} → ${c.reason}`, async () => {
        const out = await run(deployment(c.knobs), req("hi"));
        expect(out.done).toBeUndefined();
        expect(out.error?.reason).toBe(c.reason);
        expect(out.error?.retryAfterMs).toBe(c.retryAfterMs);
        expect(out.error?.message).not.toContain("simulated");
      });
    }

    it("a Retry-After HTTP date becomes milliseconds from now", async () => {
      const at = new Date(Date.now() + 20_000).toUTCString();
      const out = await run(deployment({ status: "429", "retry-after": at }), req("hi"));
      expect(out.error?.reason).toBe("PROVIDER_RATE_LIMITED");
      expect(out.error?.retryAfterMs).toBeGreaterThan(17_000);
      expect(out.error?.retryAfterMs).toBeLessThanOrEqual(20_000);
    });

    it("401 → PROVIDER_AUTH_FAILED with a message that carries neither the upstream body nor the key", async () => {
      const p = new AnthropicProvider({ defaults: { apiKey: "sk-ant-live-wrong-555", baseUrl: h.sim.url }, credentials: new Map(), fetch: h.fetch });
      const out = await run(deployment(), req("hi"), undefined, undefined, p);
      expect(out.error?.reason).toBe("PROVIDER_AUTH_FAILED");
      const visible = `${out.error?.message} ${JSON.stringify(out.error?.metadata)}`;
      expect(visible).not.toMatch(/invalid|bearer|x-api-key|sk-ant-live-wrong-555/i);
      expect(out.error?.cause).toBeInstanceOf(Error);
    });

    it("a stream cut mid-way throws after the deltas already yielded", async () => {
      const out = await run(deployment({ fault: "cut-after:3" }), req("hi"));
      expect(out.deltas.length).toBe(3);
      expect(out.done).toBeUndefined();
      expect(out.error?.reason).toBe("PROVIDER_UNAVAILABLE");
    });

    it("a malformed event mid-stream throws after the deltas already yielded", async () => {
      const out = await run(deployment({ fault: "malformed:2" }), req("hi"));
      expect(out.deltas.length).toBe(2);
      expect(out.done).toBeUndefined();
      expect(out.error?.reason).toBe("PROVIDER_UNAVAILABLE");
    });

    it("an overloaded_error event mid-stream is PROVIDER_UNAVAILABLE, a rate_limit_error event PROVIDER_RATE_LIMITED", async () => {
      const overloaded = await run(deployment({ fault: "error-after:2", status: "529" }), req("hi"));
      expect(overloaded.deltas.length).toBe(2);
      expect(overloaded.error?.reason).toBe("PROVIDER_UNAVAILABLE");
      const limited = await run(deployment({ fault: "error-after:1", status: "429" }), req("hi"));
      expect(limited.deltas.length).toBe(1);
      expect(limited.error?.reason).toBe("PROVIDER_RATE_LIMITED");
    });
  });

  describe("cancel and deadline reach the upstream", () => {
    it("aborting during a stall throws the signal's reason and closes the upstream connection", async () => {
      const d = deployment({ fault: "stall" });
      const controller = new AbortController();
      const reason = new LlmError("PROVIDER_TIMEOUT", "attempt timed out");
      const seen = nextRequest();
      const running = run(d, req("hi"), controller.signal);
      await seen;
      controller.abort(reason);
      const out = await running;
      expect(out.error).toBe(reason);
      const abort = await h.sim.waitForAbort({ tag: d.tag, timeoutMs: 2_000 });
      expect(abort.phase).toBe("before-headers");
    });

    it("aborting mid-stream (after tokens) throws CANCELLED, not a clean end, and closes the connection", async () => {
      const d = deployment({ fault: "stall-after:2" });
      const controller = new AbortController();
      const reason = new LlmError("CANCELLED", "the client cancelled");
      const out: Outcome = { deltas: [] };
      try {
        for await (const e of providerEvents(h.provider, d, req("hi"), { signal: controller.signal, timeoutMs: 5_000 })) {
          if (e.type === "delta") out.deltas.push(e.text);
          if (out.deltas.length === 2) controller.abort(reason);
        }
      } catch (err) {
        out.error = err as LlmError;
      }
      expect(out.deltas.length).toBe(2);
      expect(out.error).toBe(reason);
      const abort = await h.sim.waitForAbort({ tag: d.tag, timeoutMs: 2_000 });
      expect(abort).toMatchObject({ phase: "after-headers", tokensSent: 2 });
    });

    it("the SDK's own timeout (before response headers) is PROVIDER_TIMEOUT and closes the connection", async () => {
      const d = deployment({ fault: "stall" });
      const out = await run(d, req("hi"), new AbortController().signal, 100);
      expect(out.error?.reason).toBe("PROVIDER_TIMEOUT");
      await h.sim.waitForAbort({ tag: d.tag, timeoutMs: 2_000 });
    });

    it("a consumer that stops reading early closes the upstream connection", async () => {
      const d = deployment({ "inter-token-ms": "20", "output-tokens": "50" });
      for await (const e of providerEvents(h.provider, d, req("hi"), { signal: new AbortController().signal, timeoutMs: 5_000 })) {
        if (e.type === "delta") break;
      }
      const abort = await h.sim.waitForAbort({ tag: d.tag, timeoutMs: 2_000 });
      expect(abort.tokensSent).toBeLessThan(50);
    });
  });
});

h.describeTransports("anthropic adapter, structured output", () => {
  const schema = { type: "object", properties: { city: { type: "string" }, people: { type: "integer" } }, required: ["city", "people"], additionalProperties: false };

  it("sends a JSON schema as output_config.format and gets JSON that matches it", async () => {
    const seen = nextRequest();
    const out = await run(deployment(), req("census", { responseFormat: { type: "json_schema", name: "census", schema, strict: true } }));
    expect(out.error).toBeUndefined();
    expect((await seen).body).toMatchObject({ output_config: { format: { type: "json_schema", schema } } });
    expect(JSON.parse(out.deltas.join(""))).toEqual({ city: expect.any(String), people: expect.any(Number) });
  });

  it("refuses a JSON object format, naming the provider, without calling the upstream", async () => {
    const before = h.sim.stats.requests["/v1/messages"] ?? 0;
    const out = await run(deployment(), req("anything", { responseFormat: { type: "json_object" } }));
    expect(out.error).toMatchObject({ reason: "INVALID_REQUEST", metadata: { provider: "anthropic" } });
    expect(out.error?.message).toMatch(/anthropic has no JSON-object mode/);
    expect(out.deltas).toEqual([]);
    expect(h.sim.stats.requests["/v1/messages"] ?? 0).toBe(before);
  });
});
