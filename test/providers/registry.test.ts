/** createProviders: which adapters a configuration gets, wired to the standard variables and the catalogue's credentials. */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig, type Config, type DeploymentConfig } from "../../src/config.js";
import { LlmError } from "../../src/errors/llm-error.js";
import { createHttpFetch, type HttpFetch } from "../../src/providers/http.js";
import type { Provider, ProviderEvent } from "../../src/providers/provider.js";
import { createProviders } from "../../src/providers/registry.js";
import { startSimulator, type Simulator } from "../../src/simulator/index.js";
import { providerEvents } from "../helpers/provider-events.js";

const KEY = "sk-registry-test-key";
let sim: Simulator;
let http: HttpFetch;
let dir: string;

beforeAll(async () => {
  sim = await startSimulator({ apiKey: KEY });
  http = createHttpFetch();
  dir = mkdtempSync(join(tmpdir(), "registry-test-"));
});

afterAll(async () => {
  http?.close();
  await sim?.close();
  rmSync(dir, { recursive: true, force: true });
});

let fileSeq = 0;
function configWith(deployments: unknown[], env: Record<string, string> = {}): Config {
  const path = join(dir, `catalogue-${++fileSeq}.json`);
  const models = deployments.map((d, i) => ({ id: `m${i}`, contextWindow: 8192, maxOutputTokens: 1024, deployments: [d] }));
  writeFileSync(path, JSON.stringify({ models }));
  return loadConfig({ LLM_CONFIG: path, ...env });
}

async function text(provider: Provider, deployment: DeploymentConfig): Promise<{ text: string; done?: ProviderEvent }> {
  let out = "";
  let done: ProviderEvent | undefined;
  const request = { system: "", messages: [{ role: "user" as const, content: "ping pong" }], maxOutputTokens: 100, stop: [], metadata: {} };
  for await (const e of providerEvents(provider, deployment, request, { signal: new AbortController().signal, timeoutMs: 5_000 })) {
    if (e.type === "delta") out += e.text;
    else done = e;
  }
  return { text: out, done };
}

describe("createProviders", () => {
  it("registers only sim for the built-in catalogue", async () => {
    expect([...(await createProviders(loadConfig({}), { fetch: http.fetch })).keys()]).toEqual(["sim"]);
  });

  it("registers the providers the catalogue uses, configured from the standard variables", async () => {
    const echo = { "header:x-sim-text": "echo" };
    const config = configWith(
      [
        { provider: "openai", model: "sim-gpt", options: echo },
        { provider: "anthropic", model: "sim-claude", options: echo },
        { provider: "ollama", model: "sim-llama", options: echo },
      ],
      {
        OPENAI_API_KEY: KEY,
        OPENAI_BASE_URL: `${sim.url}/v1`,
        ANTHROPIC_API_KEY: KEY,
        ANTHROPIC_BASE_URL: sim.url,
        OLLAMA_HOST: sim.url,
      },
    );
    const providers = await createProviders(config, { fetch: http.fetch });
    expect([...providers.keys()].sort()).toEqual(["anthropic", "ollama", "openai", "sim"]);
    for (const model of config.catalogue.models) {
      const deployment = model.deployments[0] as DeploymentConfig;
      const provider = providers.get(deployment.provider) as Provider;
      expect(provider.name).toBe(deployment.provider);
      const out = await text(provider, deployment);
      expect(out.text).toBe("ping pong");
      expect(out.done).toMatchObject({ type: "done", finishReason: "stop" });
    }
  });

  it("gives a deployment its own base URL and the key its apiKeyEnv names", async () => {
    const config = configWith([{ provider: "openai", model: "sim-gpt", baseUrl: `${sim.url}/v1`, apiKeyEnv: "TEAM_OPENAI_KEY", options: {} }], {
      TEAM_OPENAI_KEY: KEY,
    });
    const providers = await createProviders(config, { fetch: http.fetch });
    const deployment = config.catalogue.models[0]?.deployments[0] as DeploymentConfig;
    expect((await text(providers.get("openai") as Provider, deployment)).done).toMatchObject({ type: "done" });
  });

  it("starts without a key and fails the call with PROVIDER_AUTH_FAILED", async () => {
    const config = configWith([{ provider: "anthropic", model: "sim-claude", baseUrl: sim.url, options: {} }]);
    const providers = await createProviders(config, { fetch: http.fetch });
    const deployment = config.catalogue.models[0]?.deployments[0] as DeploymentConfig;
    const err = await text(providers.get("anthropic") as Provider, deployment).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LlmError);
    expect((err as LlmError).reason).toBe("PROVIDER_AUTH_FAILED");
  });
});
