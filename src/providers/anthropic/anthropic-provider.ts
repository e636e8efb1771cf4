/** The Anthropic adapter, over the official `@anthropic-ai/sdk`: Messages, always streamed. */
import { Anthropic } from "@anthropic-ai/sdk";
import type { StopReason } from "@anthropic-ai/sdk/resources/messages/messages";
import type { DeploymentConfig } from "../../config.js";
import { abortReason } from "../../core/abort.js";
import type { FinishReason } from "../../core/types.js";
import { LlmError } from "../../errors/llm-error.js";
import { deploymentHeaders, type FetchFunction } from "../http.js";
import type { AttemptOptions, DeltaSink, Provider, ProviderDone, ProviderEvent, ProviderRequest } from "../provider.js";
import { pushEvents } from "../push-events.js";
import { sdkTimeoutMs } from "../sdk-timeout.js";
import { anthropicError } from "./anthropic-errors.js";
import { anthropicParams } from "./anthropic-request.js";

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

  generate(deployment: DeploymentConfig, request: ProviderRequest, options: AttemptOptions, sink: DeltaSink): Promise<ProviderDone> {
    return pushEvents(this.#events(deployment, request, options), sink);
  }

  /** The SDK's own stream iterator, as our events. */
  async *#events(deployment: DeploymentConfig, request: ProviderRequest, options: AttemptOptions): AsyncGenerator<ProviderEvent> {
    const { signal } = options;
    if (signal.aborted) throw abortReason(signal);
    const baseUrl = deployment.baseUrl ?? this.#options.defaults.baseUrl ?? ANTHROPIC_DEFAULT_BASE_URL;
    const client = this.#client(baseUrl, this.#apiKey(deployment));
    const headers = deploymentHeaders(deployment);

    let inputTokens = 0;
    let outputTokens = 0;
    let stopReason: StopReason | null = null;
    let stopped = false;
    try {
      const stream = await client.messages.create(anthropicParams(deployment, request), {
        signal,
        // The SDK's timeout is armed only until the response headers arrive; the signal, which
        // the router fires at the same timeoutMs, bounds the stream after that.
        timeout: sdkTimeoutMs(options.timeoutMs),
        maxRetries: 0,
        ...(headers ? { headers } : {}),
      });
      for await (const event of stream) {
        switch (event.type) {
          case "message_start": {
            // Cache reads and writes are input too (billed at other rates; the price table has one rate).
            const u = event.message.usage;
            inputTokens = u.input_tokens + (u.cache_creation_input_tokens ?? 0) + (u.cache_read_input_tokens ?? 0);
            outputTokens = u.output_tokens;
            break;
          }
          case "content_block_delta":
            // Text only: thinking, signatures and tool input are not part of our text stream.
            if (event.delta.type === "text_delta" && event.delta.text.length > 0) yield { type: "delta", text: event.delta.text };
            break;
          case "message_delta": {
            // Cumulative counts; input_tokens is repeated here when the API updates it.
            const u = event.usage;
            outputTokens = u.output_tokens;
            if (u.input_tokens !== null && u.input_tokens !== undefined) {
              inputTokens = u.input_tokens + (u.cache_creation_input_tokens ?? 0) + (u.cache_read_input_tokens ?? 0);
            }
            stopReason = event.delta.stop_reason;
            break;
          }
          case "message_stop":
            stopped = true;
            break;
          default:
            break;
        }
      }
    } catch (err) {
      throw anthropicError(err, signal, this.#now());
    }
    // The SDK ends a stream quietly when its signal aborts: that is not a completion.
    if (signal.aborted) throw abortReason(signal);
    if (!stopped) {
      throw new LlmError("PROVIDER_UNAVAILABLE", "anthropic ended the stream before the message finished", {
        metadata: { provider: this.name },
      });
    }
    yield { type: "done", finishReason: anthropicFinishReason(stopReason), usage: { inputTokens, outputTokens } };
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
