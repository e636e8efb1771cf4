/**
 * What every provider adapter test sets up: an upstream simulator, the pooled fetch, scripted
 * deployments, a request, a runner that collects deltas, the final event or the LlmError, and
 * the two transports the adapters are run over (the pooled node:http fetch, the SDK's default).
 */
import { afterAll, beforeAll, describe } from "vitest";
import type { DeploymentConfig } from "../../src/config.js";
import { LlmError } from "../../src/errors/llm-error.js";
import { createHttpFetch, type FetchFunction, type HttpFetch } from "../../src/providers/http.js";
import type { Provider, ProviderEvent, ProviderRequest } from "../../src/providers/provider.js";
import { startSimulator, type RequestInfo, type Simulator, type SimulatorOptions } from "../../src/simulator/index.js";
import { providerEvents } from "./provider-events.js";

export interface Outcome {
  deltas: string[];
  done?: Extract<ProviderEvent, { type: "done" }>;
  error?: LlmError;
}

export function req(content: string, extra: Partial<ProviderRequest> = {}): ProviderRequest {
  return { system: "", messages: [{ role: "user", content }], maxOutputTokens: 1000, stop: [], metadata: {}, ...extra };
}

export interface ProviderHarnessSpec<P extends Provider> {
  /** The catalogue name of the provider, and the model its deployments ask the simulator for. */
  provider: string;
  model: string;
  /** Prefix of the `x-sim-tag` each deployment carries, so aborts can be awaited. */
  tagPrefix: string;
  simulator?: SimulatorOptions;
  /** The adapter under test, for the simulator and the suite's transport (undefined: the SDK's default fetch). */
  create(sim: Simulator, fetch: FetchFunction | undefined): P;
}

export interface ProviderHarness<P extends Provider> {
  readonly sim: Simulator;
  readonly http: HttpFetch;
  /** The adapter of the running suite (transports). */
  readonly provider: P;
  /** The transport of the running suite: the pooled fetch, or undefined for the SDK's default (the global fetch). */
  readonly fetch: FetchFunction | undefined;
  /** A deployment whose extra headers script the simulator (`x-sim-*`), tagged so aborts can be awaited. */
  deployment(knobs?: Record<string, string>, extra?: Partial<DeploymentConfig>): DeploymentConfig & { tag: string };
  /** Streams one attempt to its end (default adapter: the suite's), collecting what came out. */
  run(d: DeploymentConfig, r: ProviderRequest, signal?: AbortSignal, timeoutMs?: number, p?: Provider): Promise<Outcome>;
  /** The next request the simulator receives. */
  nextRequest(): Promise<RequestInfo>;
  /** One suite per transport, each with its own adapter: `<title> over the pooled node:http fetch`, `… over the global fetch`. */
  describeTransports(title: string, body: () => void): void;
}

const TRANSPORTS = [
  { transport: "the pooled node:http fetch", pooled: true },
  { transport: "the global fetch", pooled: false },
];

/** Registers the file's beforeAll/afterAll (simulator and pooled fetch up, then closed) and returns the harness. */
export function providerHarness<P extends Provider>(spec: ProviderHarnessSpec<P>): ProviderHarness<P> {
  let sim: Simulator | undefined;
  let http: HttpFetch | undefined;
  let provider: P | undefined;
  let fetch: FetchFunction | undefined;
  let tagSeq = 0;
  const ready = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`provider harness: ${what} is used before its beforeAll ran`);
    return value;
  };

  beforeAll(async () => {
    sim = await startSimulator(spec.simulator ?? {});
    http = createHttpFetch();
  });
  afterAll(async () => {
    http?.close();
    await sim?.close();
  });

  const harness: ProviderHarness<P> = {
    get sim() {
      return ready(sim, "the simulator");
    },
    get http() {
      return ready(http, "the pooled fetch");
    },
    get provider() {
      return ready(provider, "the adapter (describeTransports)");
    },
    get fetch() {
      return fetch;
    },
    deployment(knobs = {}, extra = {}) {
      const tag = `${spec.tagPrefix}-${++tagSeq}`;
      const options: Record<string, string | number | boolean> = { "header:x-sim-tag": tag };
      for (const [k, v] of Object.entries(knobs)) options[`header:x-sim-${k}`] = v;
      return { provider: spec.provider, model: spec.model, weight: 1, options, ...extra, tag };
    },
    async run(d, r, signal = new AbortController().signal, timeoutMs = 5_000, p = harness.provider) {
      const out: Outcome = { deltas: [] };
      try {
        for await (const e of providerEvents(p, d, r, { signal, timeoutMs })) {
          if (e.type === "delta") out.deltas.push(e.text);
          else out.done = e;
        }
      } catch (err) {
        if (!(err instanceof LlmError)) throw err;
        out.error = err;
      }
      return out;
    },
    nextRequest() {
      const s = harness.sim;
      return new Promise((resolve) => s.once("request", resolve));
    },
    describeTransports(title, body) {
      describe.each(TRANSPORTS)(`${title} over $transport`, ({ pooled }) => {
        beforeAll(() => {
          fetch = pooled ? harness.http.fetch : undefined;
          provider = spec.create(harness.sim, fetch);
        });
        body();
      });
    },
  };
  return harness;
}
