/**
 * The OpenAI adapter, over the official `openai` SDK: chat completions, streamed (or, for a
 * caller that wants the whole answer at once, one JSON response), for api.openai.com and any OpenAI-compatible endpoint (vLLM, OpenRouter, Groq, Together…).
 */
import { APIError, OpenAI } from "openai";
import type { ChatCompletion, ChatCompletionChunk, ChatCompletionCreateParamsNonStreaming } from "openai/resources/chat/completions";
import type { DeploymentConfig } from "../../config.js";
import { abortReason } from "../../core/abort.js";
import { countPromptTokens, countTextTokens } from "../../core/tokens.js";
import type { FinishReason, TokenUsage } from "../../core/types.js";
import { LlmError } from "../../errors/llm-error.js";
import { deploymentHeaders, type FetchFunction } from "../http.js";
import type { AttemptOptions, DeltaSink, EmbedDone, EmbedProviderRequest, Provider, ProviderDone, ProviderRequest } from "../provider.js";
import { vectorsInOrder } from "../vectors.js";
import { sdkTimeoutMs } from "../sdk-timeout.js";
import { readSse } from "../sse.js";
import { openAiError } from "./openai-errors.js";
import { maxTokensParam, openAiParams, openAiUnaryParams } from "./openai-request.js";
import { openAiUsage } from "./openai-usage.js";

export const OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1";

export interface OpenAiProviderOptions {
  /** The provider's name in the catalogue, metrics and errors; default "openai" (another for an OpenAI-compatible provider of its own). */
  name?: string;
  /** OPENAI_API_KEY / OPENAI_BASE_URL: used by deployments that name neither. */
  defaults: { apiKey?: string; baseUrl?: string };
  /** Keys by environment variable name, for deployments' `apiKeyEnv`. */
  credentials: ReadonlyMap<string, string>;
  /** The HTTP client the SDK uses (a pooled keep-alive fetch); default: the global fetch. */
  fetch?: FetchFunction;
  /** For Retry-After dates. */
  now?: () => number;
}

type FinishReasonWire = ChatCompletionChunk.Choice["finish_reason"];

export function openAiFinishReason(reason: FinishReasonWire): FinishReason {
  switch (reason) {
    case "stop":
      return "stop";
    case "length":
      return "length";
    case "content_filter":
      return "content_filter";
    default:
      return "unspecified";
  }
}

/** One streamed chunk, or an error object in its place. */
type WireChunk = Partial<ChatCompletionChunk> & { error?: unknown };

function parseChunk(data: string): WireChunk {
  try {
    return JSON.parse(data) as WireChunk;
  } catch {
    // As the SDK's own iterator reports it (openAiError maps it to a malformed stream).
    throw new SyntaxError("Error reading response: malformed server-sent event JSON.");
  }
}

export class OpenAiProvider implements Provider {
  readonly name: string;
  readonly #options: OpenAiProviderOptions;
  /** One SDK client per (base URL, key): each holds its options, the pool is in the shared fetch. */
  readonly #clients = new Map<string, OpenAI>();
  readonly #now: () => number;

  constructor(options: OpenAiProviderOptions) {
    this.name = options.name ?? "openai";
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  async generate(deployment: DeploymentConfig, request: ProviderRequest, options: AttemptOptions, sink: DeltaSink): Promise<ProviderDone> {
    const { signal } = options;
    if (signal.aborted) throw abortReason(signal);
    const baseUrl = deployment.baseUrl ?? this.#options.defaults.baseUrl ?? OPENAI_DEFAULT_BASE_URL;
    const client = this.#client(baseUrl, this.#apiKey(deployment));
    const limitParam = maxTokensParam(deployment, baseUrl);
    const headers = deploymentHeaders(deployment);
    const requestOptions = {
      signal,
      // The SDK's timeout is armed only until the response headers arrive; the signal, which
      // the router fires at the same timeoutMs, bounds the stream after that.
      timeout: sdkTimeoutMs(options.timeoutMs),
      maxRetries: 0,
      ...(headers ? { headers } : {}),
    };
    if (request.stream === false) return this.#unary(client, openAiUnaryParams(deployment, request, limitParam), requestOptions, request, sink);
    const params = openAiParams(deployment, request, limitParam);

    let finishReason: FinishReason | undefined;
    let usage: TokenUsage | undefined;
    let texts: string[] | undefined;
    let full = false;
    let ended = false;
    try {
      // The SDK builds, authenticates and sends the request and turns a non-2xx answer into its
      // APIError; the event stream is decoded here (sse.ts), synchronously as its bytes arrive,
      // with the SDK's rules: "[DONE]" ends it, an `error` event or field is an APIError.
      const response = await client.chat.completions.create(params, requestOptions).asResponse();
      if (response.body === null) throw new SyntaxError("openai answered a streamed completion without a body");
      await readSse(
        response.body,
        (sse) => {
          // Read on to the end of the body after "[DONE]" (nothing follows it), so the connection goes back to the pool.
          if (ended || sse.data === "[DONE]") {
            ended = true;
            return;
          }
          const chunk = parseChunk(sse.data);
          if (sse.event === "error" || chunk.error) {
            const error = sse.event === "error" ? (chunk.error ?? chunk) : chunk.error;
            throw new APIError(undefined, error as object, undefined, response.headers);
          }
          // The usage chunk (stream_options.include_usage) comes last, with no choices.
          if (chunk.usage) usage = openAiUsage(chunk.usage);
          const choice = chunk.choices?.[0];
          if (choice === undefined) return;
          const text = choice.delta?.content;
          if (text) {
            // Kept only in case the server sends no usage (counted below).
            (texts ??= []).push(text);
            if (!sink.delta(text)) full = true;
          }
          if (choice.finish_reason) finishReason = openAiFinishReason(choice.finish_reason);
        },
        () => {
          if (!full) return undefined;
          full = false;
          return sink.drained();
        },
      );
    } catch (err) {
      throw openAiError(err, signal, this.#now());
    }
    // The SDK ends a stream quietly when its signal aborts: that is not a completion.
    if (signal.aborted) throw abortReason(signal);
    if (finishReason === undefined) {
      // No finish_reason: the body ended early (a proxy cut it, or the server died after headers).
      throw new LlmError("PROVIDER_UNAVAILABLE", "openai ended the stream before the completion finished", {
        metadata: { provider: this.name },
      });
    }
    // A server that ignores stream_options sends no usage: count with the stated approximation
    // of core/tokens.ts rather than report zero, so budgets and the ledger still see the call.
    usage ??= {
      inputTokens: countPromptTokens(request.system, request.messages),
      outputTokens: countTextTokens((texts ?? []).join("")),
    };
    return { finishReason, usage };
  }

  /**
   * Embeddings (POST /embeddings). The SDK asks for base64 (compact on the wire) unless told
   * otherwise and decodes it to numbers; `dimensions` is sent only when the caller chose one.
   */
  async embed(deployment: DeploymentConfig, request: EmbedProviderRequest, options: AttemptOptions): Promise<EmbedDone> {
    const { signal } = options;
    if (signal.aborted) throw abortReason(signal);
    const baseUrl = deployment.baseUrl ?? this.#options.defaults.baseUrl ?? OPENAI_DEFAULT_BASE_URL;
    const client = this.#client(baseUrl, this.#apiKey(deployment));
    const headers = deploymentHeaders(deployment);
    let response;
    try {
      response = await client.embeddings.create(
        { model: deployment.model, input: request.inputs, ...(request.dimensions !== undefined ? { dimensions: request.dimensions } : {}) },
        { signal, timeout: sdkTimeoutMs(options.timeoutMs), maxRetries: 0, ...(headers ? { headers } : {}) },
      );
    } catch (err) {
      throw openAiError(err, signal, this.#now());
    }
    if (signal.aborted) throw abortReason(signal);
    const vectors = vectorsInOrder(this.name, request.inputs.length, (response.data ?? []).map((d) => ({ index: d.index, values: d.embedding })));
    const inputTokens = response.usage?.prompt_tokens ?? request.inputs.reduce((n, text) => n + countTextTokens(text), 0);
    return { vectors, usage: { inputTokens, outputTokens: 0 } };
  }

  /** One non-streamed completion: its text as one delta. */
  async #unary(
    client: OpenAI,
    params: ChatCompletionCreateParamsNonStreaming,
    requestOptions: { signal: AbortSignal; timeout: number; maxRetries: number; headers?: Record<string, string> },
    request: ProviderRequest,
    sink: DeltaSink,
  ): Promise<ProviderDone> {
    const { signal } = requestOptions;
    let completion: ChatCompletion;
    try {
      completion = await client.chat.completions.create(params, requestOptions);
    } catch (err) {
      throw openAiError(err, signal, this.#now());
    }
    if (signal.aborted) throw abortReason(signal);
    const choice = completion.choices?.[0];
    if (choice === undefined || choice.finish_reason === null || choice.finish_reason === undefined) {
      // A body without a finished choice is not a completion (the streamed path's "ended early").
      throw new LlmError("PROVIDER_UNAVAILABLE", "openai answered without a finished completion", {
        metadata: { provider: this.name },
      });
    }
    const text = choice.message?.content ?? "";
    if (text.length > 0) sink.delta(text);
    const usage = completion.usage
      ? openAiUsage(completion.usage)
      : // As in the stream: a server that reports no usage is counted with core/tokens.ts's approximation.
        { inputTokens: countPromptTokens(request.system, request.messages), outputTokens: countTextTokens(text) };
    return { finishReason: openAiFinishReason(choice.finish_reason), usage };
  }

  #apiKey(deployment: DeploymentConfig): string {
    const key = deployment.apiKeyEnv !== undefined ? this.#options.credentials.get(deployment.apiKeyEnv) : this.#options.defaults.apiKey;
    if (key === undefined || key.length === 0) {
      throw new LlmError("PROVIDER_AUTH_FAILED", "openai: no API key is configured for this deployment", {
        metadata: { provider: this.name },
      });
    }
    return key;
  }

  #client(baseUrl: string, apiKey: string): OpenAI {
    const key = `${baseUrl}\n${apiKey}`;
    let client = this.#clients.get(key);
    if (client === undefined) {
      client = new OpenAI({
        apiKey,
        baseURL: baseUrl,
        // Everything explicit, so the SDK reads nothing from the environment for these.
        organization: null,
        project: null,
        webhookSecret: null,
        adminAPIKey: null,
        maxRetries: 0,
        logLevel: "off",
        ...(this.#options.fetch ? { fetch: this.#options.fetch } : {}),
      });
      this.#clients.set(key, client);
    }
    return client;
  }
}
