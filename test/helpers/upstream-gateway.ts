/**
 * The service in process in front of the upstream simulator (OpenAI wire format), so a test can
 * count the requests that really reached the upstream. Models:
 * - `up/fast`: an OpenAI deployment answering at once (seeded lorem ipsum from the prompt);
 * - `up/slow`: the same, 300 ms before the response headers, so identical calls overlap;
 * - `up/sim`: the built-in sim provider (it takes the `sim-fail` metadata knob), no upstream.
 */
import { randomUUID } from "node:crypto";
import type { Client } from "@connectrpc/connect";
import type { LlmService } from "../../gen/ts/llm/v1/llm_service_pb.js";
import type { RequestInfo, Simulator } from "../../src/simulator/index.js";
import type { ProtocolName } from "./clients.js";
import { startHarness, type Harness } from "./harness.js";

export const SLOW_UPSTREAM_MS = 300;

function catalogue(upstream: string): string {
  const openai = (id: string, headers: Record<string, string>) => `
  - id: ${id}
    contextWindow: 100000
    maxOutputTokens: 256
    price: { inputPerMillion: 2, outputPerMillion: 8 }
    deployments:
      - provider: openai
        model: upstream-${id.replace("/", "-")}
        baseUrl: ${upstream}/v1
        options: { ${Object.entries(headers)
          .map(([k, v]) => `"header:${k}": "${v}"`)
          .join(", ")} }`;
  return `routing:
  maxAttempts: 1
models:${openai("up/fast", { "x-sim-latency-ms": "0" })}${openai("up/slow", { "x-sim-latency-ms": String(SLOW_UPSTREAM_MS) })}
  - id: up/sim
    contextWindow: 100000
    maxOutputTokens: 256
    price: { inputPerMillion: 2, outputPerMillion: 8 }
    deployments:
      - { provider: sim, model: lorem }
`;
}

export interface UpstreamGateway {
  server: Harness;
  sim: Simulator;
  /** How many chat requests reached the upstream whose body contains `marker` (put one in each prompt). */
  upstreamCalls(marker: string): number;
  /** A new key of a new tenant (unique per run, so a shared Redis never answers from an earlier run). */
  tenantKey(protocol?: ProtocolName): Promise<{ id: string; tenant: string; secret: string; client: Client<typeof LlmService> }>;
  /** Another key of the same tenant. */
  keyOf(tenant: string, protocol?: ProtocolName): Promise<{ id: string; tenant: string; secret: string; client: Client<typeof LlmService> }>;
  close(): Promise<void>;
}

export async function startUpstreamGateway(env: Record<string, string>): Promise<UpstreamGateway> {
  const server = await startHarness({ simulator: true, catalogue, env: { OPENAI_API_KEY: "sk-test", ...env } });
  const sim = server.sim!;
  const seen: RequestInfo[] = [];
  sim.on("request", (info) => seen.push(info));
  const keyOf = async (tenant: string, protocol: ProtocolName = "grpc") => {
    const key = await server.app.keys.create({ name: `key-${randomUUID().slice(0, 8)}`, tenant });
    return { id: key.id, tenant, secret: key.secret, client: server.client(protocol, key.secret) };
  };
  return {
    server,
    sim,
    upstreamCalls: (marker) =>
      seen.filter((r) => r.path === "/v1/chat/completions" && JSON.stringify(r.body).includes(marker)).length,
    tenantKey: (protocol) => keyOf(`tenant-${randomUUID()}`, protocol),
    keyOf,
    close: () => server.close(),
  };
}
