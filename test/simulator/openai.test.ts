import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { countWords, startSimulator, type Simulator } from "../../src/simulator/index.js";
import { drain, failure } from "./helpers.js";

let sim: Simulator;
let client: OpenAI;

beforeAll(async () => {
  sim = await startSimulator();
  client = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: "x", maxRetries: 0, logLevel: "off" });
});
afterAll(() => sim.close());

const PROMPT = "Say something about the weather today";
const body = { model: "gpt-sim", messages: [{ role: "user" as const, content: PROMPT }] };

async function collect(stream: AsyncIterable<OpenAI.Chat.Completions.ChatCompletionChunk>): Promise<string[]> {
  const deltas: string[] = [];
  for await (const chunk of stream) {
    const d = chunk.choices[0]?.delta.content;
    if (d) deltas.push(d);
  }
  return deltas;
}

describe("simulator × openai SDK", () => {
  it("answers a chat completion with honest usage and a deterministic text", async () => {
    const a = await client.chat.completions.create({
      ...body,
      messages: [
        { role: "system", content: "You are terse." },
        { role: "user", content: PROMPT },
      ],
    });
    const b = await client.chat.completions.create({
      ...body,
      messages: [
        { role: "system", content: "You are terse." },
        { role: "user", content: PROMPT },
      ],
    });
    expect(a.object).toBe("chat.completion");
    expect(a.model).toBe("gpt-sim");
    expect(a.choices[0]?.message.role).toBe("assistant");
    expect(a.choices[0]?.finish_reason).toBe("stop");
    const text = a.choices[0]?.message.content ?? "";
    expect(text).toBe(b.choices[0]?.message.content);
    expect(a.usage).toEqual({
      prompt_tokens: countWords("You are terse.") + countWords(PROMPT),
      completion_tokens: countWords(text),
      total_tokens: countWords("You are terse.") + countWords(PROMPT) + countWords(text),
    });
    expect(a.usage?.completion_tokens).toBeGreaterThanOrEqual(16);
  });

  it("stops at max_tokens with finish_reason length", async () => {
    const res = await client.chat.completions.create({ ...body, max_completion_tokens: 3 }, { headers: { "x-sim-output-tokens": "10" } });
    expect(res.choices[0]?.finish_reason).toBe("length");
    expect(res.usage?.completion_tokens).toBe(3);
    expect(countWords(res.choices[0]?.message.content ?? "")).toBe(3);
  });

  it("echoes the last user message when asked, and stops at a stop sequence", async () => {
    const res = await client.chat.completions.create(
      { ...body, messages: [{ role: "user", content: "one two three four" }], stop: ["thr"] },
      { headers: { "x-sim-text": "echo" } },
    );
    expect(res.choices[0]?.message.content).toBe("one two ");
    expect(res.choices[0]?.finish_reason).toBe("stop");
    expect(res.usage?.completion_tokens).toBe(2);
  });

  it("streams deltas, a finish chunk, then usage when include_usage is set", async () => {
    const stream = await client.chat.completions.create(
      { ...body, stream: true, stream_options: { include_usage: true } },
      { headers: { "x-sim-output-tokens": "5" } },
    );
    const deltas: string[] = [];
    const finishes: string[] = [];
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      expect(chunk.object).toBe("chat.completion.chunk");
      const choice = chunk.choices[0];
      if (choice?.delta.content) deltas.push(choice.delta.content);
      if (choice?.finish_reason) finishes.push(choice.finish_reason);
      if (chunk.usage) {
        expect(chunk.choices).toEqual([]);
        usage = chunk.usage;
      }
    }
    expect(deltas).toHaveLength(5);
    expect(finishes).toEqual(["stop"]);
    expect(usage).toEqual({ prompt_tokens: countWords(PROMPT), completion_tokens: 5, total_tokens: countWords(PROMPT) + 5 });
  });

  it("reports cached tokens within prompt_tokens and reasoning tokens within completion_tokens, when asked", async () => {
    const headers = { "x-sim-cached-tokens": "3", "x-sim-reasoning-tokens": "8", "x-sim-output-tokens": "2" };
    const unary = await client.chat.completions.create(body, { headers });
    const details = { prompt_tokens_details: { cached_tokens: 3 }, completion_tokens_details: { reasoning_tokens: 8 } };
    expect(unary.usage).toMatchObject({ prompt_tokens: countWords(PROMPT), completion_tokens: 10, ...details });
    const stream = await client.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } }, { headers });
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) if (chunk.usage) usage = chunk.usage;
    expect(usage).toMatchObject({ prompt_tokens: countWords(PROMPT), completion_tokens: 10, total_tokens: countWords(PROMPT) + 10, ...details });
  });

  it("streams without a usage chunk when include_usage is not set", async () => {
    const stream = await client.chat.completions.create({ ...body, stream: true }, { headers: { "x-sim-output-tokens": "2" } });
    let usageChunks = 0;
    for await (const chunk of stream) if (chunk.usage) usageChunks++;
    expect(usageChunks).toBe(0);
  });

  it("surfaces an injected 429 as RateLimitError with retry-after and retry-after-ms", async () => {
    const err = await failure(
      client.chat.completions.create(body, { headers: { "x-sim-status": "429", "x-sim-retry-after": "7" } }),
    );
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    const e = err as InstanceType<typeof OpenAI.RateLimitError>;
    expect(e.status).toBe(429);
    expect(e.headers?.get("retry-after")).toBe("7");
    expect(e.headers?.get("retry-after-ms")).toBe("7000");
    expect(e.code).toBe("rate_limit_exceeded");
    expect(e.requestID).toMatch(/^req_sim\d+$/);
  });

  it("passes an HTTP-date retry-after through and converts it to retry-after-ms", async () => {
    const date = new Date(Date.now() + 30_000).toUTCString();
    const call = client.chat.completions.create(body, { headers: { "x-sim-status": "429", "x-sim-retry-after": date } });
    const err = (await failure(call)) as InstanceType<typeof OpenAI.APIError>;
    expect(err.headers?.get("retry-after")).toBe(date);
    expect(Number(err.headers?.get("retry-after-ms"))).toBeGreaterThan(25_000);
  });

  it.each([500, 503])("surfaces an injected %i as InternalServerError", async (status) => {
    const err = await failure(
      client.chat.completions.create(body, { headers: { "x-sim-status": String(status) } }),
    );
    expect(err).toBeInstanceOf(OpenAI.InternalServerError);
    expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(status);
    expect((err as InstanceType<typeof OpenAI.APIError>).type).toBe("server_error");
  });

  it("surfaces a connection reset as APIConnectionError", async () => {
    const err = await failure(client.chat.completions.create(body, { headers: { "x-sim-fault": "reset" } }));
    expect(err).toBeInstanceOf(OpenAI.APIConnectionError);
  });

  it("a stalled upstream is abandoned by the client's timeout, and the simulator sees the abort", async () => {
    const started = Date.now();
    const err = await failure(
      client.chat.completions.create(body, { headers: { "x-sim-fault": "stall", "x-sim-tag": "oa-stall" }, signal: AbortSignal.timeout(150) }),
    );
    expect(err).toBeInstanceOf(OpenAI.APIUserAbortError);
    const abort = await sim.waitForAbort({ tag: "oa-stall" });
    expect(abort).toMatchObject({ path: "/v1/chat/completions", stalled: true, phase: "before-headers", tokensSent: 0 });
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it("the SDK's own timeout aborts the upstream request too", async () => {
    const err = await failure(
      client.chat.completions.create(body, { headers: { "x-sim-latency-ms": "5000", "x-sim-tag": "oa-timeout" }, timeout: 100 }),
    );
    expect(err).toBeInstanceOf(OpenAI.APIConnectionTimeoutError);
    const abort = await sim.waitForAbort({ tag: "oa-timeout" });
    expect(abort.stalled).toBe(false);
  });

  it("a stream cut mid-way makes iteration throw after the tokens that arrived", async () => {
    const stream = await client.chat.completions.create({ ...body, stream: true }, { headers: { "x-sim-fault": "cut-after:3" } });
    const deltas: string[] = [];
    const err = await failure(
      drain(stream, (chunk) => {
        const d = chunk.choices[0]?.delta.content;
        if (d) deltas.push(d);
      }),
    );
    // Not an APIError: undici's "terminated" TypeError comes through as it is.
    expect(err).toBeInstanceOf(TypeError);
    expect(err).not.toBeInstanceOf(OpenAI.APIError);
    expect(deltas).toHaveLength(3);
  });

  it("aborting mid-stream ends the SDK's iteration without an error, and the simulator records the abort", async () => {
    const controller = new AbortController();
    const stream = await client.chat.completions.create(
      { ...body, stream: true },
      {
        headers: { "x-sim-inter-token-ms": "10", "x-sim-output-tokens": "100", "x-sim-tag": "oa-cancel" },
        signal: controller.signal,
      },
    );
    let chunks = 0;
    // The SDK swallows the abort: an adapter has to look at its signal after the loop.
    await drain(stream, () => {
      if (++chunks === 3) controller.abort();
    });
    expect(controller.signal.aborted).toBe(true);
    const abort = await sim.waitForAbort({ tag: "oa-cancel" });
    expect(abort).toMatchObject({ phase: "after-headers", stalled: false });
    expect(abort.tokensSent).toBeGreaterThanOrEqual(2);
    expect(abort.tokensSent).toBeLessThan(100);
  });

  it("a malformed chunk makes iteration throw a SyntaxError", async () => {
    const stream = await client.chat.completions.create({ ...body, stream: true }, { headers: { "x-sim-fault": "malformed:2" } });
    const err = await failure(collect(stream));
    expect(err).toBeInstanceOf(SyntaxError);
  });

  it("an in-stream error event becomes an APIError mid-stream", async () => {
    const stream = await client.chat.completions.create(
      { ...body, stream: true },
      { headers: { "x-sim-fault": "error-after:2", "x-sim-status": "500" } },
    );
    const err = await failure(collect(stream));
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect((err as InstanceType<typeof OpenAI.APIError>).type).toBe("server_error");
  });

  it("fails the first n requests of a fail-key, then succeeds", async () => {
    const headers = { "x-sim-fail-times": "2", "x-sim-fail-key": `oa-seq-${Date.now()}`, "x-sim-status": "503" };
    const outcomes: Array<number | "ok"> = [];
    for (let i = 0; i < 4; i++) {
      outcomes.push(
        await client.chat.completions.create(body, { headers }).then(
          () => "ok" as const,
          (e: unknown) => (e as InstanceType<typeof OpenAI.APIError>).status ?? -1,
        ),
      );
    }
    expect(outcomes).toEqual([503, 503, "ok", "ok"]);
  });

  it("lists models", async () => {
    const page = await client.models.list();
    expect(page.data.map((m) => m.id)).toEqual(["sim-gpt", "sim-claude", "sim-llama"]);
  });

  it("rejects a wrong bearer key with 401 when started with an expected key", async () => {
    const locked = await startSimulator({ apiKey: "sk-right" });
    try {
      const wrong = new OpenAI({ baseURL: `${locked.url}/v1`, apiKey: "sk-wrong", maxRetries: 0 });
      const err = await failure(wrong.chat.completions.create(body));
      expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
      expect((err as InstanceType<typeof OpenAI.APIError>).code).toBe("invalid_api_key");
      const right = new OpenAI({ baseURL: `${locked.url}/v1`, apiKey: "sk-right", maxRetries: 0 });
      await expect(right.chat.completions.create(body)).resolves.toMatchObject({ object: "chat.completion" });
    } finally {
      await locked.close();
    }
  });
});
