import { describe, expect, it } from "vitest";
import type { DeploymentConfig } from "../../config.js";
import { LlmError } from "../../errors/llm-error.js";
import type { ProviderEvent, ProviderRequest } from "../../providers/provider.js";
import { SimProvider } from "../../providers/sim/sim-provider.js";
import { providerEvents } from "../../../test/helpers/provider-events.js";

const lorem: DeploymentConfig = { provider: "sim", model: "lorem", weight: 1, options: {} };
const echo: DeploymentConfig = { provider: "sim", model: "echo", weight: 1, options: {} };

function req(content: string, extra: Partial<ProviderRequest> = {}): ProviderRequest {
  return { system: "", messages: [{ role: "user", content }], maxOutputTokens: 1000, stop: [], metadata: {}, ...extra };
}

async function collect(events: AsyncIterable<ProviderEvent>) {
  let text = "";
  let done: Extract<ProviderEvent, { type: "done" }> | undefined;
  let deltas = 0;
  for await (const e of events) {
    if (e.type === "delta") {
      text += e.text;
      deltas++;
    } else done = e;
  }
  return { text, done, deltas };
}

const sim = new SimProvider();
const live = () => ({ signal: new AbortController().signal, timeoutMs: 1000 });

describe("sim provider", () => {
  it("is deterministic: the same prompt gives the same text, another prompt another", async () => {
    const a = await collect(providerEvents(sim, lorem, req("tell me"), live()));
    const b = await collect(providerEvents(sim, lorem, req("tell me"), live()));
    const c = await collect(providerEvents(sim, lorem, req("tell me more"), live()));
    expect(a.text).toBe(b.text);
    expect(a.text).not.toBe(c.text);
    expect(a.done?.usage.outputTokens).toBe(a.deltas);
  });

  it("cuts at a stop sequence with finish reason stop", async () => {
    const r = await collect(providerEvents(sim, echo, req("alpha beta END gamma", { stop: ["END"] }), live()));
    expect(r.text).toBe("alpha beta ");
    expect(r.done?.finishReason).toBe("stop");
  });

  it("fails as scripted after the given number of tokens", async () => {
    const seen: string[] = [];
    const run = async () => {
      for await (const e of providerEvents(sim, echo, req("a b c d", { metadata: { "sim-fail": "PROVIDER_RATE_LIMITED", "sim-fail-after": "1", "sim-retry-after-ms": "250" } }), live())) {
        if (e.type === "delta") seen.push(e.text);
      }
    };
    await expect(run()).rejects.toMatchObject({ reason: "PROVIDER_RATE_LIMITED", retryAfterMs: 250 });
    expect(seen).toEqual(["a "]);
  });

  it("stops at once when its signal fires, with the signal's reason", async () => {
    const controller = new AbortController();
    const events = providerEvents(sim, echo, req("x", { metadata: { "sim-stall-ms": "60000" } }), { signal: controller.signal, timeoutMs: 60000 });
    const pending = collect(events);
    controller.abort(new LlmError("PROVIDER_TIMEOUT", "deadline exceeded"));
    await expect(pending).rejects.toMatchObject({ reason: "PROVIDER_TIMEOUT" });
  });
});

describe("sim embeddings", () => {
  const embed: DeploymentConfig = { provider: "sim", model: "embed", weight: 1, options: {} };

  it("gives each text the same unit vector every time, 256 long unless dimensions says, a shorter one its prefix's direction", async () => {
    const a = await sim.embed(embed, { inputs: ["hello world", "other"], metadata: {} }, live());
    const b = await sim.embed(embed, { inputs: ["hello world"], dimensions: 8, metadata: {} }, live());
    expect(a.vectors[0]).toHaveLength(256);
    expect(a.vectors[0]).not.toEqual(a.vectors[1]);
    expect(Math.hypot(...(a.vectors[0] ?? []))).toBeCloseTo(1, 5);
    expect(Math.hypot(...(b.vectors[0] ?? []))).toBeCloseTo(1, 5);
    expect((await sim.embed(embed, { inputs: ["hello world"], metadata: {} }, live())).vectors[0]).toEqual(a.vectors[0]);
    // Same signs as the long vector's first 8 components: the same direction, renormalised.
    expect(Array.from(b.vectors[0] ?? []).map(Math.sign)).toEqual(Array.from(a.vectors[0]?.slice(0, 8) ?? []).map(Math.sign));
    expect(a.usage).toEqual({ inputTokens: 3, outputTokens: 0 });
  });

  it("fails as scripted", async () => {
    const err = await sim.embed(embed, { inputs: ["x"], metadata: { "sim-fail": "PROVIDER_RATE_LIMITED", "sim-retry-after-ms": "50" } }, live()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LlmError);
    expect(err).toMatchObject({ reason: "PROVIDER_RATE_LIMITED", retryAfterMs: 50 });
  });
});
