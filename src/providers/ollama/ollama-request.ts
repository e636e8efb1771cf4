/** Our request → an Ollama chat request (streamed). */
import type { ChatRequest, Message, Options } from "ollama";
import type { DeploymentConfig } from "../../config.js";
import type { ProviderRequest } from "../provider.js";

export function ollamaParams(deployment: DeploymentConfig, request: ProviderRequest): ChatRequest & { stream: true } {
  const messages: Message[] = [];
  if (request.system.length > 0) messages.push({ role: "system", content: request.system });
  for (const m of request.messages) messages.push({ role: m.role, content: m.content });
  const options: Partial<Options> = { num_predict: request.maxOutputTokens };
  if (request.temperature !== undefined) options.temperature = request.temperature;
  if (request.topP !== undefined) options.top_p = request.topP;
  if (request.stop.length > 0) options.stop = request.stop;
  // Ollama's seed is a C int: a larger seed is folded into 32 bits rather than rejected.
  if (request.seed !== undefined) options.seed = Number(BigInt.asIntN(32, request.seed));
  const params: ChatRequest & { stream: true } = { model: deployment.model, messages, stream: true, options };
  // Ollama's `format`: "json" for any JSON, or the schema itself (structured outputs, Ollama 0.5+;
  // an older server ignores a schema it cannot use, and the service's check still applies).
  const format = request.responseFormat;
  if (format?.type === "json_object") params.format = "json";
  else if (format?.type === "json_schema") params.format = format.schema;
  // How long the server keeps the model loaded after this call ("5m", 3600, -1): an operator knob.
  const keepAlive = deployment.options.keepAlive;
  if (typeof keepAlive === "string" || typeof keepAlive === "number") params.keep_alive = keepAlive;
  return params;
}
