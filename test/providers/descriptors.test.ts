/** The descriptor list is the one place that names providers: config and the registry follow it. */
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { ConfigError, ENV_KEYS, loadConfig, parseCatalogue } from "../../src/config.js";
import { optionalString, optionalUrl } from "../../src/config/env-fields.js";
import { SERVICE_ENV } from "../../src/config/service-env.js";
import { TELEMETRY_ENV } from "../../src/config/telemetry.js";
import { defineProvider } from "../../src/providers/descriptor.js";
import { PROVIDER_NAMES, PROVIDERS } from "../../src/providers/descriptors.js";
import { startSimulator } from "../../src/simulator/index.js";
import { providerEvents } from "../helpers/provider-events.js";

describe("provider descriptors", () => {
  it("have unique names, and no variable is read by two providers or by a provider and the service", () => {
    expect(new Set(PROVIDER_NAMES).size).toBe(PROVIDERS.length);
    const keys = [...Object.keys(SERVICE_ENV), ...Object.keys(TELEMETRY_ENV), ...PROVIDERS.flatMap((d) => Object.keys(d.env))];
    expect(new Set(keys).size).toBe(keys.length);
    expect([...ENV_KEYS].sort()).toEqual([...keys].sort());
  });

  it("decide which provider names a deployment may use", () => {
    const catalogue = (provider: string) => ({ models: [{ id: "m", contextWindow: 10, maxOutputTokens: 10, deployments: [{ provider, model: "x" }] }] });
    for (const name of PROVIDER_NAMES) expect(parseCatalogue(catalogue(name)).models[0]?.deployments[0]?.provider).toBe(name);
    expect(() => parseCatalogue(catalogue("gemini"))).toThrow(/provider/);
  });

  it("give config each provider's settings from its own variables, and a bad one is a ConfigError naming it", () => {
    const config = loadConfig({ OPENAI_API_KEY: " sk-a ", ANTHROPIC_BASE_URL: "http://127.0.0.1:9", OLLAMA_HOST: "http://127.0.0.1:11434" });
    expect(Object.keys(config.providers).sort()).toEqual([...PROVIDER_NAMES].sort());
    expect(config.providers).toMatchObject({
      sim: {},
      openai: { apiKey: "sk-a" },
      anthropic: { baseUrl: "http://127.0.0.1:9" },
      ollama: { host: "http://127.0.0.1:11434" },
    });
    expect(config.providers.openai).toEqual({ apiKey: "sk-a" });
    expect(() => loadConfig({ OLLAMA_HOST: "not a url", PORT: "-1" })).toThrow(ConfigError);
    expect(() => loadConfig({ OLLAMA_HOST: "not a url", PORT: "-1" })).toThrow(/PORT.*OLLAMA_HOST|OLLAMA_HOST.*PORT/);
  });
});

describe("an OpenAI-compatible provider of its own", () => {
  it("is a descriptor that builds the OpenAI adapter under its own name, with its own variables", async () => {
    const sim = await startSimulator({ apiKey: "sk-compat" });
    try {
      const compat = defineProvider({
        name: "compat",
        env: { COMPAT_API_KEY: optionalString, COMPAT_BASE_URL: optionalUrl },
        settings: (e) => ({ apiKey: e.COMPAT_API_KEY, baseUrl: e.COMPAT_BASE_URL ?? "https://compat.invalid/v1" }),
        prices: {},
        async create(settings, { credentials, fetch }) {
          const { OpenAiProvider } = await import("../../src/providers/openai/openai-provider.js");
          return new OpenAiProvider({ name: "compat", defaults: settings, credentials, fetch: fetch() });
        },
      });
      const env = z.object(compat.env).parse({ COMPAT_API_KEY: "sk-compat", COMPAT_BASE_URL: `${sim.url}/v1` });
      const provider = await compat.create(compat.settings(env), { credentials: new Map(), fetch: () => globalThis.fetch });
      expect(provider.name).toBe("compat");
      let text = "";
      const request = { system: "", messages: [{ role: "user" as const, content: "one two" }], maxOutputTokens: 10, stop: [], metadata: {} };
      const deployment = { provider: "compat", model: "sim-gpt", weight: 1, options: { "header:x-sim-text": "echo" } };
      for await (const e of providerEvents(provider, deployment, request, { signal: new AbortController().signal, timeoutMs: 5_000 })) {
        if (e.type === "delta") text += e.text;
      }
      expect(text).toBe("one two");
    } finally {
      await sim.close();
    }
  });
});
