/** Our request → an Anthropic Messages request (streamed). */
import type { MessageCreateParamsStreaming, MessageParam } from "@anthropic-ai/sdk/resources/messages/messages";
import type { DeploymentConfig } from "../../config.js";
import { LlmError } from "../../errors/llm-error.js";
import type { ProviderRequest } from "../provider.js";

/**
 * The SDK's types (1.x) no longer declare `temperature` and `top_p`: the API deprecated them
 * for its newest models. Older models and Anthropic-compatible endpoints still take them, so
 * they are sent when the caller sets them, unless the deployment says `samplingParams: false`
 * (for a model that refuses them: it would answer 400, PROVIDER_REJECTED).
 */
export type AnthropicParams = MessageCreateParamsStreaming & { temperature?: number; top_p?: number };

/**
 * Anthropic takes the system prompt as a top-level field and only user and assistant turns in
 * `messages`: system turns in the conversation join the system prompt, in order.
 */
export function anthropicParams(deployment: DeploymentConfig, request: ProviderRequest): AnthropicParams {
  const system: string[] = request.system.length > 0 ? [request.system] : [];
  const messages: MessageParam[] = [];
  for (const m of request.messages) {
    if (m.role === "system") system.push(m.content);
    else messages.push({ role: m.role, content: m.content });
  }
  const params: AnthropicParams = {
    model: deployment.model,
    max_tokens: request.maxOutputTokens,
    messages,
    stream: true,
  };
  if (system.length > 0) params.system = system.join("\n\n");
  if (request.stop.length > 0) params.stop_sequences = request.stop;
  if (deployment.options.samplingParams !== false) {
    if (request.temperature !== undefined) params.temperature = request.temperature;
    if (request.topP !== undefined) params.top_p = request.topP;
  }
  // No seed: the Messages API has none.
  const format = request.responseFormat;
  if (format?.type === "json_schema") params.output_config = { format: { type: "json_schema", schema: format.schema } };
  else if (format?.type === "json_object") {
    // Refused here, before any upstream call: the Messages API constrains output to a schema only.
    throw new LlmError("INVALID_REQUEST", "anthropic has no JSON-object mode: ask for a JSON schema (response_format.json_schema) instead", {
      metadata: { provider: "anthropic" },
      fieldViolations: [{ field: "response_format.json_object", description: "not supported by provider anthropic; use response_format.json_schema" }],
    });
  }
  return params;
}
