/** The Anthropic adapter, over the official `@anthropic-ai/sdk`: Messages, always streamed. */
import { Anthropic, APIError } from "@anthropic-ai/sdk";
import type { RawMessageStreamEvent, StopReason } from "@anthropic-ai/sdk/resources/messages/messages";
import type { DeploymentConfig } from "../../config.js";
import { abortReason } from "../../core/abort.js";
import type { FinishReason, TokenUsage } from "../../core/types.js";
import { LlmError } from "../../errors/llm-error.js";
import { deploymentHeaders, type FetchFunction } from "../http.js";
import type { AttemptOptions, DeltaSink, Provider, ProviderDone, ProviderRequest } from "../provider.js";
import { readSse } from "../sse.js";
import { sdkTimeoutMs } from "../sdk-timeout.js";
import { anthropicError } from "./anthropic-errors.js";
import { anthropicParams } from "./anthropic-request.js";
import { anthropicUsage } from "./anthropic-usage.js";

export const ANTHROPIC_DEFAULT_BASE_URL = "https://api.anthropic.com";

export interface AnthropicProviderOptions {
  /** ANTHROPIC_API_KEY / ANTHROPIC_BASE_URL: used by deployments that name neither. */
  defaults: { apiKey?: string; baseUrl?: string };
  /** Keys by environment variable name, for deployments' `apiKeyEnv`. */
  credentials: ReadonlyMap<string, string>;
  /** The HTTP client the SDK uses (a pooled keep-alive fetch); default: the global fetch. */
  fetch?: FetchFunction;
  /** For Retry-After dates. */
  now?: () => number;
}

export function anthropicFinishReason(reason: StopReason | null): FinishReason {
  switch (reason) {
    case "end_turn":
    case "stop_sequence":
      return "stop";
    case "max_tokens":
    case "model_context_window_exceeded":
      return "length";
    case "refusal":
      return "content_filter";
    default:
      // tool_use and pause_turn do not happen without tools; null when the API sent none.
      return "unspecified";
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

export class AnthropicProvider implements Provider {
  readonly name = "anthropic";
  readonly #options: AnthropicProviderOptions;
  /** One SDK client per (base URL, key): each holds its options, the pool is in the shared fetch. */
  readonly #clients = new Map<string, Anthropic>();
  readonly #now: () => number;

  constructor(options: AnthropicProviderOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  async generate(deployment: DeploymentConfig, request: ProviderRequest, options: AttemptOptions, sink: DeltaSink): Promise<ProviderDone> {
    const { signal } = options;
    if (signal.aborted) throw abortReason(signal);
    const baseUrl = deployment.baseUrl ?? this.#options.defaults.baseUrl ?? ANTHROPIC_DEFAULT_BASE_URL;
    const client = this.#client(baseUrl, this.#apiKey(deployment));
    const headers = deploymentHeaders(deployment);

    let usage: TokenUsage = { inputTokens: 0, outputTokens: 0 };
    let stopReason: StopReason | null = null;
    let stopped = false;
    let full = false;
    // Before the call: what the Messages API cannot do is refused here (anthropic-request.ts).
    const params = anthropicParams(deployment, request);
    try {
      // The SDK builds, authenticates and sends the request and turns a non-2xx answer into its
      // APIError; the event stream is decoded here (sse.ts), synchronously as its bytes arrive, with
      // the SDK's rules: events without a name and `ping` are skipped, an `error` event is an APIError.
      const response = await client.messages
        .create(params, {
          signal,
          // The SDK's timeout is armed only until the response headers arrive; the signal, which
          // the router fires at the same timeoutMs, bounds the stream after that.
          timeout: sdkTimeoutMs(options.timeoutMs),
          maxRetries: 0,
          ...(headers ? { headers } : {}),
        })
        .asResponse();
      if (response.body === null) throw new SyntaxError("anthropic answered a streamed message without a body");
      await readSse(
        response.body,
        (sse) => {
          if (sse.event === null || sse.event === "ping" || sse.data.length === 0) return;
          if (sse.event === "error") {
            const body = safeJson(sse.data) ?? sse.data;
            const type = (body as { error?: { type?: string } } | undefined)?.error?.type;
            throw new APIError(undefined, body as object, undefined, response.headers, type as never);
          }
          const event = JSON.parse(sse.data) as RawMessageStreamEvent;
          switch (event.type) {
            case "message_start":
              // Cache reads and writes are input too, kept as its parts (each has its own price).
              usage = anthropicUsage(event.message.usage);
              break;
            case "content_block_delta":
              // Text only: thinking, signatures and tool input are not part of our text stream.
              if (event.delta.type === "text_delta" && event.delta.text.length > 0 && !sink.delta(event.delta.text)) full = true;
              break;
            case "message_delta":
              // Cumulative counts; an input count is repeated here when the API updates it.
              usage = anthropicUsage(event.usage, usage);
              stopReason = event.delta.stop_reason;
              break;
            case "message_stop":
              stopped = true;
              break;
            default:
              break;
          }
        },
        () => {
          if (!full) return undefined;
          full = false;
          return sink.drained();
        },
      );
    } catch (err) {
      throw anthropicError(err, signal, this.#now());
    }
    // A stream cut by our signal is not a completion.
    if (signal.aborted) throw abortReason(signal);
    if (!stopped) {
      throw new LlmError("PROVIDER_UNAVAILABLE", "anthropic ended the stream before the message finished", {
        metadata: { provider: this.name },
      });
    }
    return { finishReason: anthropicFinishReason(stopReason), usage };
  }

  #apiKey(deployment: DeploymentConfig): string {
    const key = deployment.apiKeyEnv !== undefined ? this.#options.credentials.get(deployment.apiKeyEnv) : this.#options.defaults.apiKey;
    if (key === undefined || key.length === 0) {
      throw new LlmError("PROVIDER_AUTH_FAILED", "anthropic: no API key is configured for this deployment", {
        metadata: { provider: this.name },
      });
    }
    return key;
  }

  #client(baseUrl: string, apiKey: string): Anthropic {
    const key = `${baseUrl}\n${apiKey}`;
    let client = this.#clients.get(key);
    if (client === undefined) {
      client = new Anthropic({
        apiKey,
        baseURL: baseUrl,
        webhookKey: null,
        maxRetries: 0,
        logLevel: "off",
        // The service traces its own calls; the SDK's spans would duplicate them (and read env vars).
        openTelemetry: false,
        ...(this.#options.fetch ? { fetch: this.#options.fetch } : {}),
      });
      this.#clients.set(key, client);
    }
    return client;
  }
}
