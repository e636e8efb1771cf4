import { describe, expect, it } from "vitest";
import { decideCache, type CacheDecision } from "../../src/cache/cache-policy.js";
import type { CacheMode, GenerationRequest } from "../../src/core/types.js";

const defaults = { defaultTtlMs: 300_000, maxTtlMs: 3_600_000 };

function request(mode: CacheMode, sampling: { temperature?: number; seed?: bigint } = {}, ttlSeconds = 0): GenerationRequest {
  return {
    model: "fast",
    messages: [{ role: "user", content: "hi" }],
    system: "",
    stop: [],
    fallbackModels: [],
    cache: { mode, ttlSeconds },
    metadata: {},
    idempotencyKey: "",
    ...sampling,
  };
}

describe("decideCache", () => {
  const table: [string, GenerationRequest, CacheDecision][] = [
    ["default, temperature 0", request("default", { temperature: 0 }), { read: true, write: true, ttlMs: 300_000 }],
    ["default, seed set", request("default", { temperature: 1, seed: 42n }), { read: true, write: true, ttlMs: 300_000 }],
    ["default, seed 0", request("default", { seed: 0n }), { read: true, write: true, ttlMs: 300_000 }],
    ["default, temperature 0.7", request("default", { temperature: 0.7 }), { read: false, write: false, ttlMs: 0 }],
    ["default, provider's default temperature", request("default"), { read: false, write: false, ttlMs: 0 }],
    ["force, temperature 1", request("force", { temperature: 1 }), { read: true, write: true, ttlMs: 300_000 }],
    ["force, deterministic", request("force", { temperature: 0 }), { read: true, write: true, ttlMs: 300_000 }],
    ["bypass, deterministic", request("bypass", { temperature: 0 }), { read: false, write: false, ttlMs: 0 }],
    ["bypass, temperature 1", request("bypass", { temperature: 1 }), { read: false, write: false, ttlMs: 0 }],
    ["refresh, temperature 1", request("refresh", { temperature: 1 }), { read: false, write: true, ttlMs: 300_000 }],
    ["refresh, deterministic", request("refresh", { temperature: 0 }), { read: false, write: true, ttlMs: 300_000 }],
  ];
  for (const [name, req, expected] of table) {
    it(name, () => expect(decideCache(req, defaults)).toEqual(expected));
  }

  it("takes the request's TTL, capped at the maximum", () => {
    expect(decideCache(request("force", {}, 30), defaults).ttlMs).toBe(30_000);
    expect(decideCache(request("force", {}, 86_400), defaults).ttlMs).toBe(3_600_000);
  });

  it("caps the configured default at the maximum too", () => {
    expect(decideCache(request("force"), { defaultTtlMs: 7_200_000, maxTtlMs: 3_600_000 }).ttlMs).toBe(3_600_000);
  });

  it("writes nothing when caching is configured off (maximum TTL 0)", () => {
    expect(decideCache(request("force", {}, 30), { defaultTtlMs: 0, maxTtlMs: 0 })).toEqual({ read: true, write: false, ttlMs: 0 });
  });
});
