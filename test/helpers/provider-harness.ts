/**
 * What every provider adapter test shares: the upstream simulator and the pooled fetch (started
 * before the file's tests, closed after), deployments scripted through the simulator's `x-sim-*`
 * headers and tagged so that an abort can be awaited, requests, and a runner that collects a
 * stream's deltas, its done event or its LlmError.
 */
import { afterAll, beforeAll } from "vitest";
import type { DeploymentConfig } from "../../src/config.js";
import { LlmError } from "../../src/errors/llm-error.js";
import { createHttpFetch, type HttpFetch } from "../../src/providers/http.js";
import type { ProviderEvent, ProviderRequest } from "../../src/providers/provider.js";
import { startSimulator, type RequestInfo, type Simulator } from "../../src/simulator/index.js";

/** The two transports each adapter is tested over: the pooled fetch, and the SDK's default (the global fetch). */
export const TRANSPORTS = [
  { transport: "the pooled node:http fetch", pooled: true },
  { transport: "the global fetch", pooled: false },
];

/** What the runner needs of an adapter. */
export interface StreamingProvider {
  stream(deployment: DeploymentConfig, request: ProviderRequest, options: { signal: AbortSignal; timeoutMs: number }): AsyncIterable<ProviderEvent>;
}

export interface Outcome {
  deltas: string[];
  done?: Extract<ProviderEvent, { type: "done" }>;
  error?: LlmError;
}

export interface ProviderHarnessSpec {
  /** The deployment's provider name, e.g. "openai". */
  provider: string;
  /** The deployment's model. */
  model: string;
  /** The prefix of the x-sim-tag of each deployment (unique per file). */
  tagPrefix: string;
  /** The simulator demands this key when given. */
  apiKey?: string;
}

export interface ProviderHarness<P extends StreamingProvider> {
  /** The upstream simulator (usable in tests and hooks). */
  readonly sim: Simulator;
  /** The pooled fetch of providers/http.ts. */
  readonly http: HttpFetch;
  /** Makes `p` the provider `run` uses when none is given (set it in the transport suite's beforeAll). */
  use(p: P): void;
  /** A deployment whose extra headers script the simulator (`x-sim-<knob>`), tagged so aborts can be awaited. */
  deployment(knobs?: Record<string, string>, extra?: Partial<DeploymentConfig>): DeploymentConfig & { tag: string };
  /** One user message, with the request's defaults. */
  req(content: string, extra?: Partial<ProviderRequest>): ProviderRequest;
  /** Runs a stream to its end; an LlmError is the outcome's `error`, anything else is thrown. */
  run(d: DeploymentConfig, r: ProviderRequest, signal?: AbortSignal, timeoutMs?: number, p?: P): Promise<Outcome>;
  /** The next request the simulator receives. */
  nextRequest(): Promise<RequestInfo>;
}

/** Registers the file's beforeAll/afterAll for the simulator and the pooled fetch; call it at the top level of a test file. */
export function useProviderHarness<P extends StreamingProvider>(spec: ProviderHarnessSpec): ProviderHarness<P> {
  let sim: Simulator | undefined;
  let http: HttpFetch | undefined;
  let current: P | undefined;
  let tagSeq = 0;

  beforeAll(async () => {
    sim = await startSimulator(spec.apiKey !== undefined ? { apiKey: spec.apiKey } : {});
    http = createHttpFetch();
  });
  afterAll(async () => {
    http?.close();
    await sim?.close();
  });

  const started = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`${what} is not started yet (used outside a test or hook?)`);
    return value;
  };

  return {
    get sim() {
      return started(sim, "the simulator");
    },
    get http() {
      return started(http, "the pooled fetch");
    },
    use(p) {
      current = p;
    },
    deployment(knobs = {}, extra = {}) {
      const tag = `${spec.tagPrefix}-${++tagSeq}`;
      const options: Record<string, string | number | boolean> = { "header:x-sim-tag": tag };
      for (const [k, v] of Object.entries(knobs)) options[`header:x-sim-${k}`] = v;
      return { provider: spec.provider, model: spec.model, weight: 1, options, ...extra, tag } as DeploymentConfig & { tag: string };
    },
    req(content, extra = {}) {
      return { system: "", messages: [{ role: "user", content }], maxOutputTokens: 1000, stop: [], metadata: {}, ...extra };
    },
    async run(d, r, signal = new AbortController().signal, timeoutMs = 5_000, p = current) {
      const out: Outcome = { deltas: [] };
      try {
        for await (const e of started(p, "the provider").stream(d, r, { signal, timeoutMs })) {
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
      return new Promise((resolve) => started(sim, "the simulator").once("request", resolve));
    },
  };
}
