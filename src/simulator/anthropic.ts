/**
 * Anthropic messages on the wire: request parsing (max_tokens and anthropic-version
 * required, as the real API does), the JSON message, the SSE events (message_start,
 * content_block_start, ping, content_block_delta…, content_block_stop, message_delta,
 * message_stop) and the error shape `{type: "error", error: {type, message}, request_id}`.
 */
import type { ChatRequest, Completion, Dialect, ErrorRendering, Exchange, FinishReason } from "./dialect.js";

type Headers = Readonly<Record<string, string | string[] | undefined>>;

/** One table, status → Anthropic's error type. */
const ERROR_TYPES: Record<number, string> = {
  400: "invalid_request_error",
  401: "authentication_error",
  402: "billing_error",
  403: "permission_error",
  404: "not_found_error",
  413: "request_too_large",
  429: "rate_limit_error",
  500: "api_error",
  504: "timeout_error",
  529: "overloaded_error",
};

function errorType(status: number): string {
  return ERROR_TYPES[status] ?? (status >= 500 ? "api_error" : "invalid_request_error");
}

function errorObject(status: number, message: string): string {
  return `{"type":"${errorType(status)}","message":${JSON.stringify(message)}}`;
}

/** Text of a content field: a string, or blocks of which the text ones count. */
function blocksText(content: unknown): string | undefined {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return undefined;
  let text = "";
  for (const block of content as unknown[]) {
    if (typeof block !== "object" || block === null) return undefined;
    const b = block as { type?: unknown; text?: unknown };
    if (b.type === "text") {
      if (typeof b.text !== "string") return undefined;
      text += (text.length > 0 ? "\n" : "") + b.text;
    }
  }
  return text;
}

function parse(body: unknown): ChatRequest | string {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return "The request body must be a JSON object.";
  const b = body as Record<string, unknown>;
  if (typeof b.model !== "string" || b.model.length === 0) return "model: Field required";
  if (!(Number.isInteger(b.max_tokens) && (b.max_tokens as number) >= 1)) return "max_tokens: Field required (an integer ≥ 1)";
  if (!Array.isArray(b.messages) || b.messages.length === 0) return "messages: at least one message is required";
  const promptTexts: string[] = [];
  if (b.system !== undefined) {
    const system = blocksText(b.system);
    if (system === undefined) return "system: Input should be a string or a list of text blocks";
    promptTexts.push(system);
  }
  let lastUserText = "";
  for (const [i, m] of (b.messages as unknown[]).entries()) {
    if (typeof m !== "object" || m === null) return `messages.${i}: Input should be an object`;
    const { role, content } = m as { role?: unknown; content?: unknown };
    if (role !== "user" && role !== "assistant") return `messages.${i}.role: Input should be 'user' or 'assistant'`;
    const text = blocksText(content);
    if (text === undefined) return `messages.${i}.content: Input should be a string or a list of content blocks`;
    promptTexts.push(text);
    if (role === "user") lastUserText = text;
  }
  const stop = b.stop_sequences ?? [];
  if (!Array.isArray(stop) || !stop.every((s) => typeof s === "string")) return "stop_sequences: Input should be a list of strings";
  // Structured outputs: output_config.format {type: "json_schema", schema}.
  const format = (b.output_config as { format?: { type?: unknown; schema?: unknown } | null } | undefined)?.format;
  if (format !== undefined && format !== null && !(format.type === "json_schema" && typeof format.schema === "object" && format.schema !== null)) {
    return "output_config.format: expected {type: \"json_schema\", schema: {...}}";
  }
  return {
    ...(format ? { jsonFormat: { kind: "json_schema" as const, schema: format.schema } } : {}),
    model: b.model,
    stream: b.stream === true,
    includeUsage: true,
    maxTokens: b.max_tokens as number,
    stop: stop as string[],
    promptTexts,
    lastUserText,
  };
}

function stopReason(finish: FinishReason): string {
  return finish === "length" ? "max_tokens" : finish === "stop_sequence" ? "stop_sequence" : "end_turn";
}

function stopSequenceJson(x: Exchange): string {
  return x.completion.stopSequence === null ? "null" : JSON.stringify(x.completion.stopSequence);
}

/**
 * The usage object, as Anthropic counts: input_tokens is the prompt after the cache read and the
 * cache write, which come in fields of their own; output_tokens includes thinking.
 */
function usageJson(c: Completion, output: number, thinking: string): string {
  const input = c.promptTokens - c.cachedTokens - c.cacheWriteTokens;
  return (
    `{"input_tokens":${input},"cache_creation_input_tokens":${c.cacheWriteTokens},"cache_read_input_tokens":${c.cachedTokens},` +
    `"output_tokens":${output}${thinking},"service_tier":"standard"}`
  );
}

/** The count of thinking tokens, when asked for (so the default body stays as before): `,"output_tokens_details":{…}` or "". */
function thinkingJson(c: Completion): string {
  return c.reasoningTokens > 0 ? `,"output_tokens_details":{"thinking_tokens":${c.reasoningTokens}}` : "";
}

const BLOCK_START =
  `event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n` +
  `event: ping\ndata: {"type": "ping"}\n\n`;
const DELTA_HEAD = `event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":`;
const DELTA_TAIL = "}}\n\n";
const BLOCK_STOP = `event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n`;
const MESSAGE_STOP = `event: message_stop\ndata: {"type":"message_stop"}\n\n`;

export const anthropic: Dialect = {
  name: "anthropic",
  chatPath: "/v1/messages",
  defaultModel: "sim-claude",
  get: { "/v1/models": anthropicModels },
  // Its SDK sends anthropic-version on every request; the model list shares OpenAI's path.
  claims: { header: "anthropic-version" },
  banner: { label: "Anthropic", env: (url) => `ANTHROPIC_BASE_URL=${url}` },
  idPrefix: "msg_sim",
  idHeader: "request-id",
  streamContentType: "text/event-stream; charset=utf-8",
  parse,

  checkAuth(headers: Headers, apiKey: string): string | null {
    const key = headers["x-api-key"];
    const auth = headers.authorization;
    if (typeof key === "string") return key === apiKey ? null : "invalid x-api-key";
    if (typeof auth === "string" && auth.startsWith("Bearer ")) return auth.slice(7) === apiKey ? null : "invalid bearer token";
    return "x-api-key header is required";
  },

  checkHeaders(headers: Headers): string | null {
    return typeof headers["anthropic-version"] === "string" ? null : "anthropic-version: header is required";
  },

  error(status: number, message: string, requestId: string, retryAfter: string | undefined): ErrorRendering {
    const headers: Record<string, string> = { "content-type": "application/json", "request-id": requestId };
    if (retryAfter !== undefined) headers["retry-after"] = retryAfter;
    return { body: `{"type":"error","error":${errorObject(status, message)},"request_id":"${requestId}"}`, headers };
  },

  json(x: Exchange): string {
    const c = x.completion;
    return (
      `{"id":"${x.id}","type":"message","role":"assistant","model":${JSON.stringify(x.request.model)},` +
      `"content":[{"type":"text","text":${JSON.stringify(c.tokens.join(""))}}],` +
      `"stop_reason":"${stopReason(c.finish)}","stop_sequence":${stopSequenceJson(x)},` +
      `"usage":${usageJson(c, c.tokens.length + c.reasoningTokens, thinkingJson(c))}}`
    );
  },

  streamStart(x: Exchange): string {
    return (
      `event: message_start\ndata: {"type":"message_start","message":{"id":"${x.id}","type":"message","role":"assistant",` +
      `"model":${JSON.stringify(x.request.model)},"content":[],"stop_reason":null,"stop_sequence":null,` +
      `"usage":${usageJson(x.completion, 0, "")}}}\n\n` +
      BLOCK_START
    );
  },

  streamToken(x: Exchange, i: number): string {
    return DELTA_HEAD + x.completion.quoted[i] + DELTA_TAIL;
  },

  streamEnd(x: Exchange): string {
    const c = x.completion;
    return (
      BLOCK_STOP +
      `event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"${stopReason(c.finish)}",` +
      `"stop_sequence":${stopSequenceJson(x)}},"usage":{"output_tokens":${c.tokens.length + c.reasoningTokens}${thinkingJson(c)}}}\n\n` +
      MESSAGE_STOP
    );
  },

  streamMalformed(): string {
    return `${DELTA_HEAD}"\n\n`;
  },

  streamError(status: number, message: string): string {
    return `event: error\ndata: {"type":"error","error":${errorObject(status, message)}}\n\n`;
  },
};

/** GET /v1/models when the caller speaks Anthropic (sends anthropic-version). */
export function anthropicModels(ids: readonly string[]): string {
  const data = ids.map(
    (id) => `{"type":"model","id":${JSON.stringify(id)},"display_name":${JSON.stringify(id)},"created_at":"2025-01-01T00:00:00Z"}`,
  );
  const first = ids.length > 0 ? JSON.stringify(ids[0]) : "null";
  const last = ids.length > 0 ? JSON.stringify(ids[ids.length - 1]) : "null";
  return `{"data":[${data.join(",")}],"has_more":false,"first_id":${first},"last_id":${last}}`;
}
