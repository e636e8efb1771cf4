/** Our request → an OpenAI chat completions request (streamed with usage, or not streamed). */
import type {
  ChatCompletionCreateParamsNonStreaming,
  ChatCompletionCreateParamsStreaming,
  ChatCompletionMessageParam,
} from "openai/resources/chat/completions";
import type { DeploymentConfig } from "../../config.js";
import type { ProviderRequest } from "../provider.js";

/**
 * Which field carries the output limit. `max_tokens` is what every OpenAI-compatible server
 * (vLLM, llama.cpp, Groq, Together, OpenRouter) reads; OpenAI itself deprecated it and refuses
 * it for reasoning models (o1, o3…), which need `max_completion_tokens`. So: the deployment's
 * `maxTokensParam` option when set, `max_completion_tokens` against api.openai.com, else `max_tokens`.
 */
export type MaxTokensParam = "max_tokens" | "max_completion_tokens";

export function maxTokensParam(deployment: DeploymentConfig, baseUrl: string): MaxTokensParam {
  const option = deployment.options.maxTokensParam;
  if (option === "max_tokens" || option === "max_completion_tokens") return option;
  return new URL(baseUrl).hostname === "api.openai.com" ? "max_completion_tokens" : "max_tokens";
}

export function openAiMessages(request: ProviderRequest): ChatCompletionMessageParam[] {
  const messages: ChatCompletionMessageParam[] = [];
  if (request.system.length > 0) messages.push({ role: "system", content: request.system });
  for (const m of request.messages) {
    switch (m.role) {
      case "system":
        messages.push({ role: "system", content: m.content });
        break;
      case "user":
        messages.push({ role: "user", content: m.content });
        break;
      case "assistant":
        messages.push({ role: "assistant", content: m.content });
        break;
    }
  }
  return messages;
}

export function openAiParams(
  deployment: DeploymentConfig,
  request: ProviderRequest,
  limitParam: MaxTokensParam,
): ChatCompletionCreateParamsStreaming {
  return withSampling(
    {
      model: deployment.model,
      messages: openAiMessages(request),
      stream: true,
      // Some older OpenAI-compatible servers reject stream_options: `streamUsage: false` leaves it out.
      ...(deployment.options.streamUsage === false ? {} : { stream_options: { include_usage: true } }),
    },
    request,
    limitParam,
  );
}

/** The same request, not streamed: the whole completion (with its usage) in one JSON body. */
export function openAiUnaryParams(
  deployment: DeploymentConfig,
  request: ProviderRequest,
  limitParam: MaxTokensParam,
): ChatCompletionCreateParamsNonStreaming {
  return withSampling({ model: deployment.model, messages: openAiMessages(request), stream: false }, request, limitParam);
}

function withSampling<P extends ChatCompletionCreateParamsStreaming | ChatCompletionCreateParamsNonStreaming>(
  params: P,
  request: ProviderRequest,
  limitParam: MaxTokensParam,
): P {
  params[limitParam] = request.maxOutputTokens;
  if (request.temperature !== undefined) params.temperature = request.temperature;
  if (request.topP !== undefined) params.top_p = request.topP;
  if (request.stop.length > 0) params.stop = request.stop;
  // JSON has no 64-bit integers: a seed beyond 2^53 loses precision (OpenAI treats it as a hint anyway).
  if (request.seed !== undefined) params.seed = Number(request.seed);
  const format = request.responseFormat;
  if (format?.type === "json_object") params.response_format = { type: "json_object" };
  else if (format?.type === "json_schema") {
    params.response_format = { type: "json_schema", json_schema: { name: format.name, schema: format.schema, strict: format.strict } };
  }
  return params;
}
