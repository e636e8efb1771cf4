import Anthropic from "@anthropic-ai/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { countWords, startSimulator, type Simulator } from "../../src/simulator/index.js";
import { drain, failure } from "./helpers.js";

let sim: Simulator;
let client: Anthropic;

beforeAll(async () => {
  sim = await startSimulator();
  client = new Anthropic({ baseURL: sim.url, apiKey: "x", maxRetries: 0, logLevel: "off" });
});
afterAll(() => sim.close());

const PROMPT = "Tell me a short story about a lighthouse";
const SYSTEM = "You are a storyteller.";
const body = { model: "claude-sim", max_tokens: 200, system: SYSTEM, messages: [{ role: "user" as const, content: PROMPT }] };

type APIErrorT = InstanceType<typeof Anthropic.APIError>;

describe("simulator × anthropic SDK", () => {
  it("answers a message with a text block, end_turn and honest usage", async () => {
    const msg = await client.messages.create(body);
    expect(msg).toMatchObject({ type: "message", role: "assistant", model: "claude-sim", stop_reason: "end_turn", stop_sequence: null });
    expect(msg.content).toHaveLength(1);
    const block = msg.content[0];
    if (block?.type !== "text") throw new Error("expected a text block");
    expect(msg.usage.input_tokens).toBe(countWords(SYSTEM) + countWords(PROMPT));
    expect(msg.usage.output_tokens).toBe(countWords(block.text));
    expect(msg.id).toMatch(/^msg_/);
  });

  it("reports cache reads and writes apart from input_tokens, and thinking tokens within output_tokens, when asked", async () => {
    const prompt = countWords(SYSTEM) + countWords(PROMPT);
    const headers = { "x-sim-cached-tokens": "5", "x-sim-cache-write-tokens": "2", "x-sim-reasoning-tokens": "9", "x-sim-output-tokens": "4" };
    const msg = await client.messages.create(body, { headers });
    expect(msg.usage).toMatchObject({
      input_tokens: prompt - 7,
      cache_read_input_tokens: 5,
      cache_creation_input_tokens: 2,
      output_tokens: 13,
      output_tokens_details: { thinking_tokens: 9 },
    });
    const final = await client.messages.stream(body, { headers }).finalMessage();
    expect(final.usage).toMatchObject({ input_tokens: prompt - 7, cache_read_input_tokens: 5, cache_creation_input_tokens: 2, output_tokens: 13 });
    // More cached than the prompt has: all of it, and nothing left to write.
    const all = await client.messages.create(body, { headers: { "x-sim-cached-tokens": "10000", "x-sim-cache-write-tokens": "3" } });
    expect(all.usage).toMatchObject({ input_tokens: 0, cache_read_input_tokens: prompt, cache_creation_input_tokens: 0 });
  });

  it("reports max_tokens and stop_sequence stop reasons", async () => {
    const long = await client.messages.create({ ...body, max_tokens: 4 }, { headers: { "x-sim-output-tokens": "50" } });
    expect(long.stop_reason).toBe("max_tokens");
    expect(long.usage.output_tokens).toBe(4);

    const stopped = await client.messages.create(
      { ...body, messages: [{ role: "user", content: "alpha beta gamma delta" }], stop_sequences: ["gamma"] },
      { headers: { "x-sim-text": "echo" } },
    );
    expect(stopped.stop_reason).toBe("stop_sequence");
    expect(stopped.stop_sequence).toBe("gamma");
    expect(stopped.content[0]).toMatchObject({ type: "text", text: "alpha beta " });
  });

  it("streams text deltas and the final message carries usage from message_start and message_delta", async () => {
    const stream = client.messages.stream(body, { headers: { "x-sim-output-tokens": "6" } });
    const deltas: string[] = [];
    const events: string[] = [];
    stream.on("text", (t) => deltas.push(t));
    stream.on("streamEvent", (e) => events.push(e.type));
    const final = await stream.finalMessage();
    expect(deltas).toHaveLength(6);
    expect(events[0]).toBe("message_start");
    expect(events.slice(-3)).toEqual(["content_block_stop", "message_delta", "message_stop"]);
    expect(final.usage).toMatchObject({ input_tokens: countWords(SYSTEM) + countWords(PROMPT), output_tokens: 6 });
    expect(final.stop_reason).toBe("end_turn");
    expect(final.content[0]).toMatchObject({ type: "text", text: deltas.join("") });
  });

  it("surfaces an injected 429 as RateLimitError with retry-after and the error type", async () => {
    const err = await failure(
      client.messages.create(body, { headers: { "x-sim-status": "429", "x-sim-retry-after": "3" } }),
    );
    expect(err).toBeInstanceOf(Anthropic.RateLimitError);
    const e = err as APIErrorT;
    expect(e.headers?.get("retry-after")).toBe("3");
    expect(e.type).toBe("rate_limit_error");
    expect(e.requestID).toMatch(/^req_sim\d+$/);
  });

  it.each([
    [500, Anthropic.InternalServerError, "api_error"],
    [503, Anthropic.ServiceUnavailableError, "api_error"],
    [529, Anthropic.OverloadedError, "overloaded_error"],
  ] as const)("surfaces an injected %i as its SDK error class", async (status, cls, type) => {
    const err = await failure(client.messages.create(body, { headers: { "x-sim-status": String(status) } }));
    expect(err).toBeInstanceOf(cls);
    expect((err as APIErrorT).status).toBe(status);
    expect((err as APIErrorT).type).toBe(type);
  });

  it("a stream cut mid-way rejects finalMessage after the deltas that arrived", async () => {
    const stream = client.messages.stream(body, { headers: { "x-sim-fault": "cut-after:2" } });
    const deltas: string[] = [];
    stream.on("text", (t) => deltas.push(t));
    stream.on("error", () => undefined);
    await expect(stream.finalMessage()).rejects.toBeInstanceOf(Error);
    expect(deltas).toHaveLength(2);
  });

  it("an in-stream overloaded_error event rejects the stream with that type", async () => {
    const stream = client.messages.stream(body, { headers: { "x-sim-fault": "error-after:1", "x-sim-status": "529" } });
    stream.on("error", () => undefined);
    const err = await failure(stream.finalMessage());
    expect(err).toBeInstanceOf(Anthropic.APIError);
    expect((err as APIErrorT).type).toBe("overloaded_error");
  });

  it("a malformed event makes raw stream iteration throw", async () => {
    const stream = await client.messages.create({ ...body, stream: true }, { headers: { "x-sim-fault": "malformed:1" } });
    const err = await failure(drain(stream));
    expect(err).toBeInstanceOf(SyntaxError);
  });

  it("aborting a stream mid-way closes the upstream connection, which the simulator records", async () => {
    const controller = new AbortController();
    const stream = client.messages.stream(body, {
      headers: { "x-sim-inter-token-ms": "20", "x-sim-output-tokens": "100", "x-sim-tag": "an-cancel" },
      signal: controller.signal,
    });
    stream.on("error", () => undefined);
    let seen = 0;
    stream.on("text", () => {
      if (++seen === 3) controller.abort();
    });
    await expect(stream.finalMessage()).rejects.toBeInstanceOf(Anthropic.APIUserAbortError);
    const abort = await sim.waitForAbort({ tag: "an-cancel" });
    expect(abort.phase).toBe("after-headers");
    expect(abort.tokensSent).toBeGreaterThanOrEqual(3);
    expect(abort.tokensSent).toBeLessThan(100);
  });

  it("a stall is abandoned by the client's timeout and recorded as a client abort", async () => {
    const err = await failure(
      client.messages.create(body, { headers: { "x-sim-fault": "stall", "x-sim-tag": "an-stall" }, timeout: 100 }),
    );
    expect(err).toBeInstanceOf(Anthropic.APIConnectionTimeoutError);
    await expect(sim.waitForAbort({ tag: "an-stall" })).resolves.toMatchObject({ stalled: true, path: "/v1/messages" });
  });

  it("lists models in Anthropic's shape on /v1/models", async () => {
    const ids: string[] = [];
    for await (const m of client.models.list()) ids.push(m.id);
    expect(ids).toEqual(["sim-gpt", "sim-claude", "sim-llama"]);
  });

  it("checks x-api-key when started with a key, and requires anthropic-version", async () => {
    const locked = await startSimulator({ apiKey: "sk-ant-right" });
    try {
      const wrong = new Anthropic({ baseURL: locked.url, apiKey: "sk-ant-wrong", maxRetries: 0 });
      const err = await failure(wrong.messages.create(body));
      expect(err).toBeInstanceOf(Anthropic.AuthenticationError);
      expect((err as APIErrorT).type).toBe("authentication_error");
      const right = new Anthropic({ baseURL: locked.url, apiKey: "sk-ant-right", maxRetries: 0 });
      await expect(right.messages.create(body)).resolves.toMatchObject({ type: "message" });

      const raw = await fetch(`${locked.url}/v1/messages`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-api-key": "sk-ant-right" },
        body: JSON.stringify(body),
      });
      expect(raw.status).toBe(400);
      expect(await raw.json()).toMatchObject({ type: "error", error: { type: "invalid_request_error" } });
    } finally {
      await locked.close();
    }
  });
});
