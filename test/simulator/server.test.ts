import { once } from "node:events";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSimulator, type ClientAbort, type Simulator } from "../../src/simulator/index.js";

let sim: Simulator;
beforeAll(async () => {
  sim = await startSimulator();
});
afterAll(() => sim.close());

const CHAT = { model: "m", messages: [{ role: "user", content: "hello simulator" }] };

function post(s: Simulator, path: string, body: unknown, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<Response> {
  return fetch(`${s.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", "anthropic-version": "2023-06-01", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
    ...(signal ? { signal } : {}),
  });
}

/** Reads a streamed body, noting when each chunk arrived (ms since `t0`). */
async function timedChunks(res: Response, t0: number): Promise<Array<{ at: number; text: string }>> {
  const out: Array<{ at: number; text: string }> = [];
  const decoder = new TextDecoder();
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    out.push({ at: performance.now() - t0, text: decoder.decode(chunk) });
  }
  return out;
}

describe("simulator knobs", () => {
  it("delays the headers by latency-ms", async () => {
    const t0 = performance.now();
    const res = await post(sim, "/v1/chat/completions", CHAT, { "x-sim-latency-ms": "120" });
    expect(res.status).toBe(200);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(115);
    await res.text();
  });

  it("sends the headers at once, the first token after ttft-ms, then one token per inter-token-ms", async () => {
    const t0 = performance.now();
    const res = await post(sim, "/v1/chat/completions", { ...CHAT, stream: true }, {
      "x-sim-ttft-ms": "150",
      "x-sim-inter-token-ms": "40",
      "x-sim-output-tokens": "4",
    });
    const headersAt = performance.now() - t0;
    const chunks = await timedChunks(res, t0);
    const firstToken = chunks.find((c) => c.text.includes('"content":"') && !c.text.includes('"role"'));
    expect(firstToken).toBeDefined();
    // Measured from the request's start: when the client notices the headers depends on its own
    // event loop, but no token can arrive before the server's ttft-ms and inter-token waits have run.
    expect(headersAt).toBeLessThan(firstToken?.at ?? 0);
    expect(firstToken?.at ?? 0).toBeGreaterThanOrEqual(148);
    const end = chunks.at(-1)?.at ?? 0;
    expect(end).toBeGreaterThanOrEqual(150 + 3 * 40 - 2);
    expect(chunks.map((c) => c.text).join("")).toContain("data: [DONE]");
  });

  it("delays a unary response by the whole generation time", async () => {
    const t0 = performance.now();
    const res = await post(sim, "/api/chat", { ...CHAT, stream: false }, { "x-sim-ttft-ms": "50", "x-sim-inter-token-ms": "20", "x-sim-output-tokens": "4" });
    await res.json();
    expect(performance.now() - t0).toBeGreaterThanOrEqual(50 + 3 * 20 - 5);
  });

  it("rejects a knob it cannot use with a 400 naming the header, in the vendor's shape", async () => {
    const res = await post(sim, "/v1/messages", { ...CHAT, max_tokens: 5 }, { "x-sim-fault": "explode" });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { type: string; error: { type: string; message: string } };
    expect(body.type).toBe("error");
    expect(body.error.message).toMatch(/x-sim-fault/);
  });

  it("answers invalid JSON and a missing model with 400", async () => {
    expect((await post(sim, "/v1/chat/completions", "{not json")).status).toBe(400);
    const res = await post(sim, "/v1/chat/completions", { messages: CHAT.messages });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { type: "invalid_request_error" } });
  });

  it("cuts a unary body short, and sends a malformed one, on request", async () => {
    const cut = await post(sim, "/v1/chat/completions", CHAT, { "x-sim-fault": "cut-after:1" });
    expect(cut.status).toBe(200);
    await expect(cut.text()).rejects.toThrow();
    const malformed = await post(sim, "/v1/chat/completions", CHAT, { "x-sim-fault": "malformed" });
    await expect(malformed.json()).rejects.toBeInstanceOf(SyntaxError);
  });

  it("error-after without a status sends a 500-type error event in the stream", async () => {
    const res = await post(sim, "/v1/messages", { ...CHAT, max_tokens: 50, stream: true }, { "x-sim-fault": "error-after:1" });
    const text = await res.text();
    expect(text).toContain('event: error\ndata: {"type":"error","error":{"type":"api_error"');
    expect(text).not.toContain("message_stop");
  });
});

describe("run-level options", () => {
  it("applies run-level knobs to every chat request, and headers override them", async () => {
    const s = await startSimulator({ status: 503, retryAfter: "1" });
    try {
      const failed = await post(s, "/api/chat", CHAT);
      expect(failed.status).toBe(503);
      expect(failed.headers.get("retry-after")).toBe("1");
      expect((await post(s, "/api/chat", { ...CHAT, stream: false }, { "x-sim-status": "200" })).status).toBe(200);
    } finally {
      await s.close();
    }
  });

  it("plays a scripted sequence, one step per chat request, then the run-level knobs", async () => {
    const s = await startSimulator({ script: [{ status: 429, retryAfter: "2" }, { fault: { kind: "reset" } }, {}, { status: 500 }] });
    try {
      const statuses: Array<number | string> = [];
      for (let i = 0; i < 5; i++) {
        statuses.push(await post(s, "/v1/chat/completions", CHAT).then((r) => r.status, () => "reset"));
      }
      expect(statuses).toEqual([429, "reset", 200, 500, 200]);
    } finally {
      await s.close();
    }
  });

  it("keeps a counter per fail-key and forgets the oldest past maxFailKeys", async () => {
    const s = await startSimulator({ maxFailKeys: 2 });
    try {
      const call = (key: string) => post(s, "/v1/chat/completions", CHAT, { "x-sim-fail-times": "1", "x-sim-fail-key": key }).then((r) => r.status);
      expect([await call("a"), await call("a"), await call("b"), await call("b")]).toEqual([503, 200, 503, 200]);
      await call("c"); // a third key: "a" is forgotten
      expect(await call("a")).toBe(503);
      expect(await call("b")).toBe(503);
    } finally {
      await s.close();
    }
  });

  it("checks the bearer key on /v1/models when started with one", async () => {
    const s = await startSimulator({ apiKey: "k" });
    try {
      const denied = await fetch(`${s.url}/v1/models`);
      expect(denied.status).toBe(401);
      expect(await denied.json()).toMatchObject({ error: { code: "invalid_api_key" } });
      expect((await fetch(`${s.url}/v1/models`, { headers: { authorization: "Bearer k" } })).status).toBe(200);
    } finally {
      await s.close();
    }
  });

  it("gives up a stall after maxStallMs by dropping the connection, which is not a client abort", async () => {
    const s = await startSimulator({ maxStallMs: 80 });
    try {
      await expect(post(s, "/v1/chat/completions", CHAT, { "x-sim-fault": "stall" })).rejects.toThrow();
      expect(s.stats.clientAborts).toBe(0);
    } finally {
      await s.close();
    }
  });
});

describe("observations", () => {
  it("counts requests per path and responses per status", async () => {
    const s = await startSimulator();
    try {
      await (await post(s, "/v1/chat/completions", CHAT)).text();
      await (await post(s, "/v1/chat/completions", CHAT, { "x-sim-status": "429" })).text();
      await (await post(s, "/v1/messages", { ...CHAT, max_tokens: 3 })).text();
      await (await fetch(`${s.url}/api/tags`)).text();
      const missing = await fetch(`${s.url}/nope`);
      expect(missing.status).toBe(404);
      const wrongMethod = await fetch(`${s.url}/v1/chat/completions`);
      expect(wrongMethod.status).toBe(405);
      expect(s.stats.requests).toEqual({ "/v1/chat/completions": 3, "/v1/messages": 1, "/api/tags": 1, unmatched: 1 });
      expect(s.stats.statuses).toEqual({ 200: 3, 429: 1, 404: 1, 405: 1 });
      expect(s.stats.injected).toBe(1);
      expect(s.stats.inFlight).toBe(0);
      s.resetStats();
      expect(s.stats.requests).toEqual({});
    } finally {
      await s.close();
    }
  });

  it("emits each parsed request so a test can check what an adapter sent", async () => {
    const seen: unknown[] = [];
    const listener = (r: { body: unknown }) => seen.push(r.body);
    sim.on("request", listener);
    try {
      await (await post(sim, "/v1/chat/completions", { ...CHAT, temperature: 0.3 })).text();
    } finally {
      sim.off("request", listener);
    }
    expect(seen).toEqual([{ ...CHAT, temperature: 0.3 }]);
  });

  it("emits client-abort when the client goes away during the latency", async () => {
    const events: ClientAbort[] = [];
    const listener = (a: ClientAbort) => events.push(a);
    sim.on("client-abort", listener);
    try {
      const controller = new AbortController();
      const pending = post(sim, "/v1/chat/completions", CHAT, { "x-sim-latency-ms": "5000", "x-sim-tag": "ev-latency" }, controller.signal);
      setTimeout(() => controller.abort(), 50);
      await expect(pending).rejects.toThrow();
      const abort = await sim.waitForAbort({ tag: "ev-latency" });
      expect(events).toContainEqual(abort);
      expect(abort).toMatchObject({ phase: "before-headers", stalled: false, tokensSent: 0 });
      expect(abort.elapsedMs).toBeLessThan(4_000);
    } finally {
      sim.off("client-abort", listener);
    }
  });

  it("records an abort during stall-after with the tokens already sent", async () => {
    const controller = new AbortController();
    const res = await post(sim, "/api/chat", CHAT, { "x-sim-fault": "stall-after:2", "x-sim-tag": "ev-stall-after" }, controller.signal);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    let text = "";
    while ((text.match(/\n/g) ?? []).length < 2) {
      const { value } = await reader.read();
      text += new TextDecoder().decode(value);
    }
    controller.abort();
    const abort = await sim.waitForAbort({ tag: "ev-stall-after" });
    expect(abort).toMatchObject({ phase: "after-headers", stalled: true, tokensSent: 2 });
  });

  it("waitForAbort hands each abort out once, and rejects when none comes in time", async () => {
    const controller = new AbortController();
    const pending = post(sim, "/v1/messages", { ...CHAT, max_tokens: 5 }, { "x-sim-fault": "stall", "x-sim-tag": "claim" }, controller.signal);
    await once(sim, "request");
    controller.abort();
    await expect(pending).rejects.toThrow();
    await expect(sim.waitForAbort({ tag: "claim" })).resolves.toMatchObject({ path: "/v1/messages", stalled: true });
    await expect(sim.waitForAbort({ tag: "claim", timeoutMs: 30 })).rejects.toThrow(/no client abort/);
  });

  it("close() ends stalled connections at once", async () => {
    const s = await startSimulator();
    const pending = post(s, "/v1/chat/completions", CHAT, { "x-sim-fault": "stall" }).then(
      () => "answered",
      () => "dropped",
    );
    await once(s, "request");
    const t0 = performance.now();
    await s.close();
    expect(performance.now() - t0).toBeLessThan(1_000);
    expect(await pending).toBe("dropped");
    expect(s.stats.clientAborts).toBe(0);
  });

  it("refuses a body larger than maxBodyBytes with 413", async () => {
    const s = await startSimulator({ maxBodyBytes: 64 });
    try {
      const res = await post(s, "/v1/chat/completions", { ...CHAT, messages: [{ role: "user", content: "x".repeat(200) }] });
      expect(res.status).toBe(413);
    } finally {
      await s.close();
    }
  });
});
