/**
 * The Ollama adapter, over the `ollama` package: /api/chat, always streamed (NDJSON).
 *
 * The package has no per-request AbortSignal (only `abort()` on a client or a stream, which
 * it wires to a controller of its own), no timeout and no Retry-After. So each call gets a
 * client (cheap: the constructor only formats the host) whose `fetch` puts our own signal on
 * the HTTP request (aborting it closes the upstream connection for real), remembers the
 * response headers, and guards the NDJSON body (see ndjson-guard.ts).
 */
import { Ollama } from "ollama";
import type { DeploymentConfig } from "../../config.js";
import { abortReason } from "../../core/abort.js";
import { deadlineSignal, type DeadlineSignal } from "../../core/deadline-signal.js";
import { countPromptTokens, countTextTokens } from "../../core/tokens.js";
import type { FinishReason } from "../../core/types.js";
import { LlmError } from "../../errors/llm-error.js";
import { deploymentHeaders, type FetchFunction } from "../http.js";
import type { AttemptOptions, DeltaSink, EmbedDone, EmbedProviderRequest, Provider, ProviderDone, ProviderEvent, ProviderRequest } from "../provider.js";
import { vectorsInOrder } from "../vectors.js";
import { pushEvents } from "../push-events.js";
import { sdkTimeoutMs } from "../sdk-timeout.js";
import { guardNdjson } from "./ndjson-guard.js";
import { ollamaError, type OllamaErrorContext } from "./ollama-errors.js";
import { ollamaParams } from "./ollama-request.js";

export const OLLAMA_DEFAULT_HOST = "http://127.0.0.1:11434";

export interface OllamaProviderOptions {
  /** OLLAMA_HOST: used by deployments without a baseUrl. */
  defaults: { host?: string };
  /** Keys by environment variable name: a deployment's `apiKeyEnv` is sent as a bearer token (ollama.com, an authenticating proxy). */
  credentials: ReadonlyMap<string, string>;
  /** The HTTP client (a pooled keep-alive fetch); default: the global fetch. */
  fetch?: FetchFunction;
  /** For Retry-After dates. */
  now?: () => number;
}

export function ollamaFinishReason(reason: string | undefined): FinishReason {
  switch (reason) {
    case "stop":
      return "stop";
    case "length":
      return "length";
    default:
      return "unspecified";
  }
}

export class OllamaProvider implements Provider {
  readonly name = "ollama";
  readonly #options: OllamaProviderOptions;
  readonly #fetch: FetchFunction;
  readonly #now: () => number;

  constructor(options: OllamaProviderOptions) {
    this.#options = options;
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.#now = options.now ?? Date.now;
  }

  generate(deployment: DeploymentConfig, request: ProviderRequest, options: AttemptOptions, sink: DeltaSink): Promise<ProviderDone> {
    return pushEvents(this.#events(deployment, request, options), sink);
  }

  /** Embeddings (POST /api/embed, one JSON answer), with the same signal, timeout and error mapping as a chat. */
  async embed(deployment: DeploymentConfig, request: EmbedProviderRequest, options: AttemptOptions): Promise<EmbedDone> {
    const { signal } = options;
    if (signal.aborted) throw abortReason(signal);
    const { client, ctx, local } = this.#attempt(deployment, options, false);
    const keepAlive = deployment.options.keepAlive;
    try {
      const response = await client.embed({
        model: deployment.model,
        input: request.inputs,
        ...(request.dimensions !== undefined ? { dimensions: request.dimensions } : {}),
        ...(typeof keepAlive === "string" || typeof keepAlive === "number" ? { keep_alive: keepAlive } : {}),
      });
      if (signal.aborted) throw abortReason(signal);
      const vectors = vectorsInOrder(this.name, request.inputs.length, (response.embeddings ?? []).map((values, index) => ({ index, values })));
      const inputTokens = response.prompt_eval_count ?? request.inputs.reduce((n, text) => n + countTextTokens(text), 0);
      return { vectors, usage: { inputTokens, outputTokens: 0 } };
    } catch (err) {
      if (err instanceof LlmError) throw err;
      ctx.now = this.#now();
      throw ollamaError(err, ctx);
    } finally {
      local.dispose();
    }
  }

  /** The SDK's own stream iterator, as our events. */
  async *#events(deployment: DeploymentConfig, request: ProviderRequest, options: AttemptOptions): AsyncGenerator<ProviderEvent> {
    const { signal } = options;
    if (signal.aborted) throw abortReason(signal);
    const { client, ctx, local } = this.#attempt(deployment, options, true);

    let finished = false;
    const texts: string[] = [];
    try {
      const parts = await client.chat(ollamaParams(deployment, request));
      ctx.streaming = true;
      for await (const part of parts) {
        const text = part.message?.content;
        if (text) {
          texts.push(text);
          yield { type: "delta", text };
        }
        if (part.done) {
          finished = true;
          // Counts are missing when the server skipped them (a fully cached prompt on older
          // versions): the stated approximation of core/tokens.ts stands in.
          const usage = {
            inputTokens: part.prompt_eval_count ?? countPromptTokens(request.system, request.messages),
            outputTokens: part.eval_count ?? countTextTokens(texts.join("")),
          };
          yield { type: "done", finishReason: ollamaFinishReason(part.done_reason), usage };
          return;
        }
      }
    } catch (err) {
      ctx.now = this.#now();
      throw ollamaError(err, ctx);
    } finally {
      local.dispose();
      // Early exit (an error, or the consumer stopped reading): close the upstream request.
      if (!finished) local.abort(new LlmError("CANCELLED", "the stream was closed"));
    }
    // The package throws when the body ends without a done line; this is only a safeguard.
    throw new LlmError("PROVIDER_UNAVAILABLE", "ollama ended the stream before the completion finished", {
      metadata: { provider: this.name },
    });
  }

  /**
   * One attempt's client. Our controller (`local`) follows the caller's signal (same reason) and the
   * attempt's timeout, and stops the request when the consumer leaves early: it is the only signal
   * fetch sees. `ctx` collects what the error mapping needs. `ndjson`: the body is a chat stream,
   * guarded line by line (guardNdjson).
   */
  #attempt(deployment: DeploymentConfig, options: AttemptOptions, ndjson: boolean): { client: Ollama; ctx: OllamaErrorContext; local: DeadlineSignal } {
    const headers = this.#headers(deployment);
    const local = deadlineSignal({
      parent: options.signal,
      timeoutMs: sdkTimeoutMs(options.timeoutMs),
      expired: () => new LlmError("PROVIDER_TIMEOUT", "ollama did not finish in time", { metadata: { provider: this.name } }),
    });
    const ctx: OllamaErrorContext = { signal: local.signal, headers: undefined, streaming: false, now: 0 };
    const base = this.#fetch;
    const fetch: FetchFunction = async (input, init) => {
      const response = await base(input, { ...init, signal: local.signal });
      ctx.headers = response.headers;
      if (!ndjson || !response.ok || response.body === null) return response;
      return new Response(guardNdjson(response.body), { status: response.status, statusText: response.statusText, headers: response.headers });
    };
    const client = new Ollama({ host: deployment.baseUrl ?? this.#options.defaults.host ?? OLLAMA_DEFAULT_HOST, fetch, ...(headers ? { headers } : {}) });
    return { client, ctx, local };
  }

  #headers(deployment: DeploymentConfig): Record<string, string> | undefined {
    const extra = deploymentHeaders(deployment);
    if (deployment.apiKeyEnv === undefined) return extra;
    const key = this.#options.credentials.get(deployment.apiKeyEnv);
    if (key === undefined || key.length === 0) {
      throw new LlmError("PROVIDER_AUTH_FAILED", "ollama: the deployment's API key is not configured", { metadata: { provider: this.name } });
    }
    return { ...extra, Authorization: `Bearer ${key}` };
  }
}
