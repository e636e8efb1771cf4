/**
 * The OpenAI adapter with the real `openai` SDK against the upstream simulator (OpenAI wire:
 * SSE chunks, usage chunk, error bodies, Retry-After), over the pooled fetch of providers/http.ts.
 */
import { describe, expect, it } from "vitest";
import { LlmError } from "../../errors/llm-error.js";
import type { ErrorReason } from "../../errors/taxonomy.js";
import { OpenAiProvider } from "../../providers/openai/openai-provider.js";
import { providerHarness, req, type Outcome } from "../../../test/helpers/provider-harness.js";
import { providerEvents } from "../../../test/helpers/provider-events.js";

const KEY = "sk-test-0123456789-secret";
const h = providerHarness({
  provider: "openai",
  model: "sim-gpt",
  tagPrefix: "oa",
  simulator: { apiKey: KEY },
  create: (sim, fetch) => new OpenAiProvider({ defaults: { apiKey: KEY, baseUrl: `${sim.url}/v1` }, credentials: new Map(), fetch }),
});
const { deployment, run, nextRequest } = h;

h.describeTransports("openai adapter", () => {
  it("collects the same completion the unary JSON API returns (text and usage)", async () => {
    const res = await h.http.fetch(`${h.sim.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "sim-gpt", messages: [{ role: "user", content: "tell me a story" }], max_tokens: 1000 }),
    });
    const unary = (await res.json()) as {
      choices: { message: { content: string }; finish_reason: string }[];
      usage: { prompt_tokens: number; completion_tokens: number };
    };
    const out = await run(deployment(), req("tell me a story"));
    expect(out.deltas.length).toBeGreaterThan(1);
    expect(out.deltas.join("")).toBe(unary.choices[0]?.message.content);
    expect(out.done).toEqual({
      type: "done",
      finishReason: unary.choices[0]?.finish_reason,
      usage: { inputTokens: unary.usage.prompt_tokens, outputTokens: unary.usage.completion_tokens },
    });
  });

  it("streams the completion as deltas, then usage and finish reason from the final chunks", async () => {
    const seen = nextRequest();
    const out = await run(deployment({ text: "echo" }), req("alpha beta gamma delta", { system: "be brief" }));
    expect(out.error).toBeUndefined();
    expect(out.deltas.length).toBe(4);
    expect(out.deltas.join("")).toBe("alpha beta gamma delta");
    // The simulator counts words: 2 (system) + 4 (user) in, 4 out.
    expect(out.done).toEqual({ type: "done", finishReason: "stop", usage: { inputTokens: 6, outputTokens: 4 } });
    const body = (await seen).body as Record<string, unknown>;
    expect(body).toMatchObject({
      model: "sim-gpt",
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 1000,
      messages: [
        { role: "system", content: "be brief" },
        { role: "user", content: "alpha beta gamma delta" },
      ],
    });
  });

  it("reports cached input and reasoning tokens from the usage chunk's details, as parts of the totals", async () => {
    const d = deployment({ text: "echo", "cached-tokens": "4", "reasoning-tokens": "7" });
    const out = await run(d, req("alpha beta gamma delta", { system: "be brief" }));
    expect(out.error).toBeUndefined();
    // 6 prompt tokens, 4 of them cached; 4 text tokens + 7 reasoning = 11 completion tokens.
    expect(out.done).toEqual({
      type: "done",
      finishReason: "stop",
      usage: { inputTokens: 6, outputTokens: 11, cachedInputTokens: 4, reasoningTokens: 7 },
    });
  });

  it("maps sampling parameters, stop and seed, and sends the deployment's extra headers", async () => {
    const seen = nextRequest();
    const d = deployment({ text: "echo" });
    d.options["header:HTTP-Referer"] = "https://example.test/app";
    d.options["header:Authorization"] = "Bearer not-from-the-catalogue";
    await run(d, req("one two three", { temperature: 0.25, topP: 0.5, stop: ["END"], seed: 42n, maxOutputTokens: 7 }));
    const info = await seen;
    expect(info.body).toMatchObject({ temperature: 0.25, top_p: 0.5, stop: ["END"], seed: 42, max_tokens: 7 });
    expect(info.headers["http-referer"]).toBe("https://example.test/app");
    // Credentials never come from deployment options: the SDK's own bearer is what arrives.
    expect(info.headers.authorization).toBe(`Bearer ${KEY}`);
  });

  it("uses max_completion_tokens when the deployment asks for it", async () => {
    const seen = nextRequest();
    const d = deployment({ text: "echo" });
    d.options.maxTokensParam = "max_completion_tokens";
    await run(d, req("one two", { maxOutputTokens: 5 }));
    const body = (await seen).body as Record<string, unknown>;
    expect(body.max_completion_tokens).toBe(5);
    expect(body.max_tokens).toBeUndefined();
  });

  it("reports finish reason length when max output tokens cut the completion", async () => {
    const out = await run(deployment({ "output-tokens": "20" }), req("write a lot", { maxOutputTokens: 3 }));
    expect(out.deltas.length).toBe(3);
    expect(out.done?.finishReason).toBe("length");
    expect(out.done?.usage.outputTokens).toBe(3);
  });

  it("reports finish reason stop at a stop sequence", async () => {
    const out = await run(deployment({ text: "echo" }), req("red green STOP blue", { stop: ["STOP"] }));
    expect(out.deltas.join("")).toBe("red green ");
    expect(out.done?.finishReason).toBe("stop");
  });

  it("falls back to counting tokens when the server sends no usage", async () => {
    const d = deployment({ text: "echo" });
    d.options.streamUsage = false;
    const out = await run(d, req("one two three"));
    expect(out.done?.finishReason).toBe("stop");
    // core/tokens.ts: 3 words + 4 framing tokens in; 3 words out.
    expect(out.done?.usage).toEqual({ inputTokens: 7, outputTokens: 3 });
  });

  it("uses a deployment's own key (apiKeyEnv) and base URL over the defaults", async () => {
    const p = new OpenAiProvider({
      defaults: { apiKey: "sk-wrong", baseUrl: "http://127.0.0.1:9/v1" },
      credentials: new Map([["TEAM_KEY", KEY]]),
      fetch: h.fetch,
    });
    const d = deployment({ text: "echo" }, { apiKeyEnv: "TEAM_KEY", baseUrl: `${h.sim.url}/v1` });
    const out = await run(d, req("hello there"), undefined, undefined, p);
    expect(out.done?.finishReason).toBe("stop");
  });

  it("fails with PROVIDER_AUTH_FAILED before any request when no key is configured", async () => {
    const p = new OpenAiProvider({ defaults: { baseUrl: `${h.sim.url}/v1` }, credentials: new Map(), fetch: h.fetch });
    const before = h.sim.stats.requests["/v1/chat/completions"] ?? 0;
    const out = await run(deployment(), req("hi"), undefined, undefined, p);
    expect(out.error?.reason).toBe("PROVIDER_AUTH_FAILED");
    expect(h.sim.stats.requests["/v1/chat/completions"] ?? 0).toBe(before);
  });

  describe("maps every upstream failure to the taxonomy", () => {
    const cases: { name: string; knobs: Record<string, string>; reason: ErrorReason; retryAfterMs?: number }[] = [
      { name: "429 with Retry-After seconds", knobs: { status: "429", "retry-after": "2" }, reason: "PROVIDER_RATE_LIMITED", retryAfterMs: 2000 },
      { name: "429 without Retry-After", knobs: { status: "429" }, reason: "PROVIDER_RATE_LIMITED" },
      { name: "500", knobs: { status: "500" }, reason: "PROVIDER_UNAVAILABLE" },
      { name: "503 with Retry-After", knobs: { status: "503", "retry-after": "1" }, reason: "PROVIDER_UNAVAILABLE", retryAfterMs: 1000 },
      { name: "529", knobs: { status: "529" }, reason: "PROVIDER_UNAVAILABLE" },
      { name: "400", knobs: { status: "400" }, reason: "PROVIDER_REJECTED" },
      { name: "404", knobs: { status: "404" }, reason: "PROVIDER_REJECTED" },
      { name: "403", knobs: { status: "403" }, reason: "PROVIDER_AUTH_FAILED" },
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
      const at = new Date(Date.now() + 30_000).toUTCString();
      const out = await run(deployment({ status: "429", "retry-after": at }), req("hi"));
      expect(out.error?.reason).toBe("PROVIDER_RATE_LIMITED");
      expect(out.error?.retryAfterMs).toBeGreaterThan(27_000);
      expect(out.error?.retryAfterMs).toBeLessThanOrEqual(30_000);
    });

    it("401 → PROVIDER_AUTH_FAILED with a message that carries neither the upstream body nor the key", async () => {
      const p = new OpenAiProvider({ defaults: { apiKey: "sk-live-wrong-key-987", baseUrl: `${h.sim.url}/v1` }, credentials: new Map(), fetch: h.fetch });
      const out = await run(deployment(), req("hi"), undefined, undefined, p);
      expect(out.error?.reason).toBe("PROVIDER_AUTH_FAILED");
      const visible = `${out.error?.message} ${JSON.stringify(out.error?.metadata)}`;
      expect(visible).not.toMatch(/incorrect|api key provided|sk-live-wrong-key-987/i);
      // The SDK error is kept for the log's redacted cause, not shown.
      expect(out.error?.cause).toBeInstanceOf(Error);
    });

    it("a stream cut mid-way throws after the deltas already yielded", async () => {
      const out = await run(deployment({ fault: "cut-after:3" }), req("hi"));
      expect(out.deltas.length).toBe(3);
      expect(out.done).toBeUndefined();
      expect(out.error?.reason).toBe("PROVIDER_UNAVAILABLE");
    });

    it("a malformed chunk mid-stream throws after the deltas already yielded", async () => {
      const out = await run(deployment({ fault: "malformed:2" }), req("hi"));
      expect(out.deltas.length).toBe(2);
      expect(out.done).toBeUndefined();
      expect(out.error?.reason).toBe("PROVIDER_UNAVAILABLE");
    });

    it("an error event mid-stream throws after the deltas already yielded", async () => {
      const out = await run(deployment({ fault: "error-after:2", status: "503" }), req("hi"));
      expect(out.deltas.length).toBe(2);
      expect(out.error?.reason).toBe("PROVIDER_UNAVAILABLE");
    });
  });

  describe("a unary request (stream: false) makes one non-streamed upstream call", () => {
    it("sends stream: false without stream_options and yields the whole text as one delta, then usage and finish reason", async () => {
      const seen = nextRequest();
      const out = await run(deployment({ text: "echo" }), req("alpha beta gamma delta", { system: "be brief", stream: false }));
      expect(out.error).toBeUndefined();
      expect(out.deltas).toEqual(["alpha beta gamma delta"]);
      expect(out.done).toEqual({ type: "done", finishReason: "stop", usage: { inputTokens: 6, outputTokens: 4 } });
      const body = (await seen).body as Record<string, unknown>;
      expect(body).toMatchObject({ model: "sim-gpt", stream: false, max_tokens: 1000 });
      expect(body.stream_options).toBeUndefined();
    });

    it("reports cached input and reasoning tokens from the body's usage details", async () => {
      const d = deployment({ text: "echo", "cached-tokens": "5", "reasoning-tokens": "3" });
      const out = await run(d, req("alpha beta gamma delta", { system: "be brief", stream: false }));
      expect(out.done).toEqual({
        type: "done",
        finishReason: "stop",
        usage: { inputTokens: 6, outputTokens: 7, cachedInputTokens: 5, reasoningTokens: 3 },
      });
    });

    it("returns the same text and usage as the streamed call", async () => {
      const streamed = await run(deployment(), req("tell me a story"));
      const unary = await run(deployment(), req("tell me a story", { stream: false }));
      expect(unary.deltas).toEqual([streamed.deltas.join("")]);
      expect(unary.done).toEqual(streamed.done);
    });

    it("maps sampling parameters and the output limit", async () => {
      const seen = nextRequest();
      const out = await run(deployment({ "output-tokens": "20" }), req("write a lot", { maxOutputTokens: 3, temperature: 0.5, stream: false }));
      expect(out.done?.finishReason).toBe("length");
      expect(out.done?.usage.outputTokens).toBe(3);
      expect((await seen).body).toMatchObject({ max_tokens: 3, temperature: 0.5, stream: false });
    });

    it("maps failures and Retry-After as the streamed call does", async () => {
      const limited = await run(deployment({ status: "429", "retry-after": "2" }), req("hi", { stream: false }));
      expect(limited.error?.reason).toBe("PROVIDER_RATE_LIMITED");
      expect(limited.error?.retryAfterMs).toBe(2000);
      const unavailable = await run(deployment({ status: "503" }), req("hi", { stream: false }));
      expect(unavailable.error?.reason).toBe("PROVIDER_UNAVAILABLE");
      const reset = await run(deployment({ fault: "reset" }), req("hi", { stream: false }));
      expect(reset.error?.reason).toBe("PROVIDER_UNAVAILABLE");
      const rejected = await run(deployment({ status: "400" }), req("hi", { stream: false }));
      expect(rejected.error?.reason).toBe("PROVIDER_REJECTED");
      for (const out of [limited, unavailable, reset, rejected]) expect(out.deltas).toEqual([]);
    });

    it("aborting while the upstream stalls throws the signal's reason and closes the upstream connection", async () => {
      const d = deployment({ fault: "stall" });
      const controller = new AbortController();
      const reason = new LlmError("CANCELLED", "the client cancelled");
      const seen = nextRequest();
      const running = run(d, req("hi", { stream: false }), controller.signal);
      await seen;
      controller.abort(reason);
      const out = await running;
      expect(out.error).toBe(reason);
      await h.sim.waitForAbort({ tag: d.tag, timeoutMs: 2_000 });
    });

    it("the SDK's own timeout is PROVIDER_TIMEOUT", async () => {
      const d = deployment({ fault: "stall" });
      const out = await run(d, req("hi", { stream: false }), new AbortController().signal, 100);
      expect(out.error?.reason).toBe("PROVIDER_TIMEOUT");
      await h.sim.waitForAbort({ tag: d.tag, timeoutMs: 2_000 });
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

    it("a signal already aborted sends nothing", async () => {
      const controller = new AbortController();
      controller.abort(new LlmError("CANCELLED", "gone"));
      const before = h.sim.stats.requests["/v1/chat/completions"] ?? 0;
      const out = await run(deployment(), req("hi"), controller.signal);
      expect(out.error?.reason).toBe("CANCELLED");
      expect(h.sim.stats.requests["/v1/chat/completions"] ?? 0).toBe(before);
    });
  });
});

h.describeTransports("openai adapter, structured output", () => {
  const schema = { type: "object", properties: { city: { type: "string" }, people: { type: "integer" } }, required: ["city", "people"], additionalProperties: false };

  it("sends a JSON schema as response_format json_schema {name, schema, strict} and gets JSON that matches, streamed and not", async () => {
    for (const stream of [true, false]) {
      const seen = nextRequest();
      const out = await run(deployment(), req("census", { ...(stream ? {} : { stream: false }), responseFormat: { type: "json_schema", name: "census", schema, strict: true } }));
      expect(out.error).toBeUndefined();
      expect((await seen).body).toMatchObject({ response_format: { type: "json_schema", json_schema: { name: "census", schema, strict: true } } });
      expect(JSON.parse(out.deltas.join(""))).toEqual({ city: expect.any(String), people: expect.any(Number) });
      if (stream) expect(out.deltas.length).toBeGreaterThan(1);
    }
  });

  it("sends a JSON object format as response_format json_object, and a wrong answer comes through as it is (the gateway checks it)", async () => {
    const seen = nextRequest();
    const out = await run(deployment({ json: "not-json" }), req("anything", { responseFormat: { type: "json_object" } }));
    expect((await seen).body).toMatchObject({ response_format: { type: "json_object" } });
    expect(() => JSON.parse(out.deltas.join(""))).toThrow();
  });
});
