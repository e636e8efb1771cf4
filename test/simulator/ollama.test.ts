import { Ollama, type ChatResponse } from "ollama";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { countWords, startSimulator, type Simulator } from "../../src/simulator/index.js";
import { drain, failure } from "./helpers.js";

let sim: Simulator;
let client: Ollama;

beforeAll(async () => {
  sim = await startSimulator();
  client = new Ollama({ host: sim.url });
});
afterAll(() => sim.close());

const PROMPT = "Why is the sky blue";
const request = { model: "llama-sim", messages: [{ role: "user", content: PROMPT }] };

/** The ollama SDK takes headers per client, not per call: one client per script. */
function scripted(headers: Record<string, string>, fetchImpl?: typeof fetch): Ollama {
  return new Ollama({ host: sim.url, headers, ...(fetchImpl ? { fetch: fetchImpl } : {}) });
}

/** What the SDK's ResponseError carries (the class is not exported). */
interface ResponseErrorShape {
  name: string;
  status_code: number;
  error: string;
}

async function collect(stream: AsyncIterable<ChatResponse>): Promise<ChatResponse[]> {
  const parts: ChatResponse[] = [];
  await drain(stream, (part) => parts.push(part));
  return parts;
}

describe("simulator × ollama SDK", () => {
  it("answers a non-streamed chat with counts and done_reason stop", async () => {
    const res = await client.chat({ ...request, stream: false });
    expect(res.done).toBe(true);
    expect(res.done_reason).toBe("stop");
    expect(res.message.role).toBe("assistant");
    expect(res.prompt_eval_count).toBe(countWords(PROMPT));
    expect(res.eval_count).toBe(countWords(res.message.content));
    expect(res.total_duration).toBeGreaterThan(0);
    expect(res.model).toBe("llama-sim");
  });

  it("honours num_predict with done_reason length", async () => {
    const res = await scripted({ "x-sim-output-tokens": "20" }).chat({ ...request, options: { num_predict: 5 } });
    expect(res.done_reason).toBe("length");
    expect(res.eval_count).toBe(5);
  });

  it("streams NDJSON parts, the last one done with the counts", async () => {
    const parts = await collect(await scripted({ "x-sim-output-tokens": "4" }).chat({ ...request, stream: true }));
    expect(parts).toHaveLength(5);
    expect(parts.slice(0, 4).every((p) => !p.done && p.message.content.length > 0)).toBe(true);
    const last = parts[4];
    expect(last).toMatchObject({ done: true, done_reason: "stop", eval_count: 4, prompt_eval_count: countWords(PROMPT) });
  });

  it("streams by default when the request does not say (the real API's default)", async () => {
    const res = await fetch(`${sim.url}/api/chat`, { method: "POST", body: JSON.stringify(request), headers: { "x-sim-output-tokens": "3" } });
    expect(res.headers.get("content-type")).toBe("application/x-ndjson");
    const lines = (await res.text()).trim().split("\n").map((l) => JSON.parse(l) as { done: boolean });
    expect(lines.map((l) => l.done)).toEqual([false, false, false, true]);
  });

  it("lists tags and reports a version", async () => {
    const tags = await client.list();
    expect(tags.models.map((m) => m.name)).toEqual(["sim-gpt", "sim-claude", "sim-llama"]);
    const version = await client.version();
    expect(version.version).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it.each([429, 500, 503])("surfaces an injected %i as ResponseError with that status_code", async (status) => {
    const err = (await failure(scripted({ "x-sim-status": String(status) }).chat(request))) as ResponseErrorShape;
    expect(err.name).toBe("ResponseError");
    expect(err.status_code).toBe(status);
    expect(err.error).toMatch(/simulated/);
  });

  it("a stream cut mid-way makes iteration throw after the parts that arrived", async () => {
    const stream = await scripted({ "x-sim-fault": "cut-after:2" }).chat({ ...request, stream: true });
    const parts: string[] = [];
    const err = await failure(drain(stream, (part) => parts.push(part.message.content)));
    expect(err).toBeInstanceOf(Error);
    expect(parts).toHaveLength(2);
  });

  it("the SDK skips a malformed line with a console warning and carries on", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => undefined);
    try {
      const parts = await collect(await scripted({ "x-sim-fault": "malformed:1", "x-sim-output-tokens": "3" }).chat({ ...request, stream: true }));
      expect(parts.at(-1)?.done).toBe(true);
      expect(parts.filter((p) => !p.done)).toHaveLength(3);
      expect(warn).toHaveBeenCalledWith("invalid json: ", expect.any(String));
    } finally {
      warn.mockRestore();
    }
  });

  it("an in-stream error line makes iteration throw", async () => {
    const stream = await scripted({ "x-sim-fault": "error-after:1", "x-sim-status": "503" }).chat({ ...request, stream: true });
    await expect(collect(stream)).rejects.toThrow(/simulated/);
  });

  it("aborting a stream closes the upstream connection, which the simulator records", async () => {
    const c = scripted({ "x-sim-inter-token-ms": "20", "x-sim-output-tokens": "100", "x-sim-tag": "ol-cancel" });
    const stream = await c.chat({ ...request, stream: true });
    let seen = 0;
    const err = await failure(
      drain(stream, () => {
        if (++seen === 2) stream.abort();
      }),
    );
    expect(err).toBeInstanceOf(Error);
    const abort = await sim.waitForAbort({ tag: "ol-cancel" });
    expect(abort.phase).toBe("after-headers");
    expect(abort.tokensSent).toBeLessThan(100);
  });

  it("a stall before the headers can only be abandoned through a custom fetch carrying a signal", async () => {
    const deadline = AbortSignal.timeout(150);
    const withDeadline: typeof fetch = (input, init) =>
      fetch(input, { ...init, signal: init?.signal ? AbortSignal.any([init.signal, deadline]) : deadline });
    const stalled = scripted({ "x-sim-fault": "stall", "x-sim-tag": "ol-stall" }, withDeadline);
    const err = (await failure(stalled.chat(request))) as Error;
    expect(err.name).toMatch(/TimeoutError|AbortError/);
    await expect(sim.waitForAbort({ tag: "ol-stall" })).resolves.toMatchObject({ stalled: true, path: "/api/chat" });
  });

  it("fails the first n requests of a fail-key, then succeeds", async () => {
    const c = scripted({ "x-sim-fail-times": "1", "x-sim-fail-key": `ol-seq-${Date.now()}`, "x-sim-status": "500" });
    const first = ((await failure(c.chat(request))) as ResponseErrorShape).status_code;
    const second = await c.chat(request);
    expect(first).toBe(500);
    expect(second.done).toBe(true);
  });
});
