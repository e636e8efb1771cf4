/**
 * The Ollama adapter with the real `ollama` package against the upstream simulator (/api/chat
 * wire: NDJSON lines, final counts and done_reason, `{error}` bodies), over the pooled fetch
 * of providers/http.ts.
 */
import net from "node:net";
import { describe, expect, it } from "vitest";
import { LlmError } from "../../errors/llm-error.js";
import type { ErrorReason } from "../../errors/taxonomy.js";
import { createHttpFetch } from "../../providers/http.js";
import { OllamaProvider } from "../../providers/ollama/ollama-provider.js";
import { providerHarness, req, type Outcome } from "../../../test/helpers/provider-harness.js";
import { providerEvents } from "../../../test/helpers/provider-events.js";

const h = providerHarness({
  provider: "ollama",
  model: "sim-llama",
  tagPrefix: "ol",
  create: (sim, fetch) => new OllamaProvider({ defaults: { host: sim.url }, credentials: new Map(), fetch }),
});
const { deployment, run, nextRequest } = h;

h.describeTransports("ollama adapter", () => {
  it("collects the same completion the unary JSON API returns (text and counts)", async () => {
    const res = await h.http.fetch(`${h.sim.url}/api/chat`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "sim-llama", messages: [{ role: "user", content: "tell me a story" }], stream: false }),
    });
    const unary = (await res.json()) as { message: { content: string }; done_reason: string; prompt_eval_count: number; eval_count: number };
    const out = await run(deployment(), req("tell me a story"));
    expect(out.deltas.length).toBeGreaterThan(1);
    expect(out.deltas.join("")).toBe(unary.message.content);
    expect(out.done).toEqual({
      type: "done",
      finishReason: unary.done_reason,
      usage: { inputTokens: unary.prompt_eval_count, outputTokens: unary.eval_count },
    });
  });

  it("streams the NDJSON lines as deltas, with the final line's counts and done_reason", async () => {
    const seen = nextRequest();
    const out = await run(deployment({ text: "echo" }), req("alpha beta gamma delta", { system: "be brief" }));
    expect(out.error).toBeUndefined();
    expect(out.deltas.join("")).toBe("alpha beta gamma delta");
    expect(out.deltas.length).toBe(4);
    expect(out.done).toEqual({ type: "done", finishReason: "stop", usage: { inputTokens: 6, outputTokens: 4 } });
    expect((await seen).body).toMatchObject({
      model: "sim-llama",
      stream: true,
      messages: [
        { role: "system", content: "be brief" },
        { role: "user", content: "alpha beta gamma delta" },
      ],
      options: { num_predict: 1000 },
    });
  });

  it("maps temperature, top_p, stop, seed and keep_alive into the request", async () => {
    const seen = nextRequest();
    const d = deployment({ text: "echo" });
    d.options.keepAlive = "10m";
    await run(d, req("one two", { temperature: 0.2, topP: 0.8, stop: ["END"], seed: 7n, maxOutputTokens: 12 }));
    expect((await seen).body).toMatchObject({
      keep_alive: "10m",
      options: { temperature: 0.2, top_p: 0.8, stop: ["END"], seed: 7, num_predict: 12 },
    });
  });

  it("reports finish reason length when num_predict cuts the completion", async () => {
    const out = await run(deployment({ "output-tokens": "20" }), req("write a lot", { maxOutputTokens: 3 }));
    expect(out.deltas.length).toBe(3);
    expect(out.done?.finishReason).toBe("length");
    expect(out.done?.usage.outputTokens).toBe(3);
  });

  it("sends a deployment's key (apiKeyEnv) as a bearer token", async () => {
    const p = new OllamaProvider({ defaults: { host: h.sim.url }, credentials: new Map([["OLLAMA_CLOUD_KEY", "ol-secret"]]), fetch: h.fetch });
    const seen = nextRequest();
    const out = await run(deployment({ text: "echo" }, { apiKeyEnv: "OLLAMA_CLOUD_KEY" }), req("hi there"), undefined, undefined, p);
    expect(out.done?.finishReason).toBe("stop");
    expect((await seen).headers.authorization).toBe("Bearer ol-secret");
  });

  // The ollama SDK starts the next call as soon as it reads a stream's `done` line, and undici (under
  // the pooled fetch) frees a connection one event-loop turn after its response ends: consecutive
  // streams alternate between two kept-alive connections instead of opening one each.
  it("reuses keep-alive connections for consecutive streams (at most two for five)", async () => {
    let connections = 0;
    const proxy = net.createServer((client) => {
      connections++;
      const upstream = net.connect(h.sim.port, "127.0.0.1");
      client.pipe(upstream).pipe(client);
      const close = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on("error", close).on("close", close);
      upstream.on("error", close).on("close", close);
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    const port = (proxy.address() as net.AddressInfo).port;
    const pool = createHttpFetch();
    try {
      const p = new OllamaProvider({ defaults: { host: `http://127.0.0.1:${port}` }, credentials: new Map(), fetch: pool.fetch });
      for (let i = 0; i < 5; i++) expect((await run(deployment(), req(`hello ${i}`), undefined, undefined, p)).done?.finishReason).toBe("stop");
      expect(connections).toBeLessThanOrEqual(2);
    } finally {
      pool.close();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });

  describe("maps every upstream failure to the taxonomy", () => {
    const cases: { name: string; knobs: Record<string, string>; reason: ErrorReason; retryAfterMs?: number }[] = [
      { name: "429 with Retry-After", knobs: { status: "429", "retry-after": "2" }, reason: "PROVIDER_RATE_LIMITED", retryAfterMs: 2000 },
      { name: "503 (queue full) with Retry-After", knobs: { status: "503", "retry-after": "1" }, reason: "PROVIDER_UNAVAILABLE", retryAfterMs: 1000 },
      { name: "500", knobs: { status: "500" }, reason: "PROVIDER_UNAVAILABLE" },
      { name: "529", knobs: { status: "529" }, reason: "PROVIDER_UNAVAILABLE" },
      { name: "400", knobs: { status: "400" }, reason: "PROVIDER_REJECTED" },
      { name: "404 (model not pulled)", knobs: { status: "404" }, reason: "PROVIDER_REJECTED" },
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

    it("401 → PROVIDER_AUTH_FAILED with a message that carries neither the upstream body nor the key", async () => {
      const p = new OllamaProvider({ defaults: { host: h.sim.url }, credentials: new Map([["K", "ol-live-wrong-321"]]), fetch: h.fetch });
      const out = await run(deployment({ status: "401" }, { apiKeyEnv: "K" }), req("hi"), undefined, undefined, p);
      expect(out.error?.reason).toBe("PROVIDER_AUTH_FAILED");
      const visible = `${out.error?.message} ${JSON.stringify(out.error?.metadata)}`;
      expect(visible).not.toMatch(/invalid|api key|ol-live-wrong-321/i);
      expect(out.error?.cause).toBeInstanceOf(Error);
    });

    it("an unreachable server → PROVIDER_UNAVAILABLE", async () => {
      const closed = net.createServer();
      await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
      const port = (closed.address() as net.AddressInfo).port;
      await new Promise((resolve) => closed.close(resolve));
      const out = await run(deployment({}, { baseUrl: `http://127.0.0.1:${port}` }), req("hi"));
      expect(out.error?.reason).toBe("PROVIDER_UNAVAILABLE");
    });

    it("a stream cut mid-way throws after the deltas already yielded", async () => {
      const out = await run(deployment({ fault: "cut-after:3" }), req("hi"));
      expect(out.deltas.length).toBe(3);
      expect(out.done).toBeUndefined();
      expect(out.error?.reason).toBe("PROVIDER_UNAVAILABLE");
    });

    it("a malformed line mid-stream throws after the deltas already yielded (the package alone would skip it)", async () => {
      const out = await run(deployment({ fault: "malformed:2" }), req("hi"));
      expect(out.deltas.length).toBe(2);
      expect(out.done).toBeUndefined();
      expect(out.error?.reason).toBe("PROVIDER_UNAVAILABLE");
      expect(out.error?.message).toBe("ollama sent a malformed stream");
    });

    it("an error line mid-stream throws after the deltas already yielded", async () => {
      const out = await run(deployment({ fault: "error-after:2", status: "500" }), req("hi"));
      expect(out.deltas.length).toBe(2);
      expect(out.error?.reason).toBe("PROVIDER_UNAVAILABLE");
      expect(out.error?.message).not.toContain("simulated");
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

    it("the attempt's timeoutMs alone ends a stall with PROVIDER_TIMEOUT and closes the connection", async () => {
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

h.describeTransports("ollama adapter, structured output", () => {
  const schema = { type: "object", properties: { city: { type: "string" }, people: { type: "integer" } }, required: ["city", "people"] };

  it("sends a JSON schema as `format` and gets JSON that matches it", async () => {
    const seen = nextRequest();
    const out = await run(deployment(), req("census", { responseFormat: { type: "json_schema", name: "census", schema, strict: false } }));
    expect(out.error).toBeUndefined();
    expect((await seen).body).toMatchObject({ format: schema });
    expect(JSON.parse(out.deltas.join(""))).toEqual({ city: expect.any(String), people: expect.any(Number) });
  });

  it("sends a JSON object format as format \"json\"", async () => {
    const seen = nextRequest();
    const out = await run(deployment(), req("anything", { responseFormat: { type: "json_object" } }));
    expect((await seen).body).toMatchObject({ format: "json" });
    expect(JSON.parse(out.deltas.join(""))).toEqual({ answer: "sim", ok: true });
  });
});
