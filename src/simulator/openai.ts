/**
 * OpenAI chat completions on the wire: request parsing, the JSON body, the SSE stream
 * (`data: {chat.completion.chunk}` … `data: [DONE]`), the models list and the error shape
 * `{error: {message, type, param, code}}`.
 */
import type { ChatRequest, Dialect, ErrorRendering, Exchange, FinishReason } from "./dialect.js";
import type { JsonFormat } from "./json-output.js";

type Headers = Readonly<Record<string, string | string[] | undefined>>;

/** One table, status → the type and code OpenAI sends with it. */
const ERRORS: Record<number, { type: string; code: string | null }> = {
  400: { type: "invalid_request_error", code: null },
  401: { type: "invalid_request_error", code: "invalid_api_key" },
  404: { type: "invalid_request_error", code: "model_not_found" },
  429: { type: "requests", code: "rate_limit_exceeded" },
  500: { type: "server_error", code: null },
  503: { type: "server_error", code: "service_unavailable" },
};

function errorOf(status: number): { type: string; code: string | null } {
  return ERRORS[status] ?? (status >= 500 ? { type: "server_error", code: null } : { type: "invalid_request_error", code: null });
}

function errorJson(status: number, message: string): string {
  const { type, code } = errorOf(status);
  return `{"error":{"message":${JSON.stringify(message)},"type":"${type}","param":null,"code":${code === null ? "null" : `"${code}"`}}}`;
}

/** Text of a message's content: a string, or an array of parts of which the text ones count. */
function contentText(content: unknown): string | undefined {
  if (typeof content === "string") return content;
  if (content === null || content === undefined) return "";
  if (!Array.isArray(content)) return undefined;
  let text = "";
  for (const part of content as unknown[]) {
    if (typeof part !== "object" || part === null) return undefined;
    const p = part as { type?: unknown; text?: unknown };
    if (p.type === "text" && typeof p.text === "string") text += (text.length > 0 ? "\n" : "") + p.text;
  }
  return text;
}

function stopList(stop: unknown): readonly string[] | undefined {
  if (stop === undefined || stop === null) return [];
  if (typeof stop === "string") return [stop];
  if (Array.isArray(stop) && stop.every((s) => typeof s === "string")) return stop as string[];
  return undefined;
}

/** `response_format`: text (or none), json_object, or json_schema {name, schema, strict}; undefined when malformed. */
function jsonFormatOf(format: unknown): JsonFormat | null | undefined {
  if (format === undefined || format === null) return null;
  const f = format as { type?: unknown; json_schema?: { schema?: unknown; name?: unknown } };
  if (f.type === "text") return null;
  if (f.type === "json_object") return { kind: "json_object" };
  if (f.type === "json_schema" && typeof f.json_schema?.name === "string") return { kind: "json_schema", schema: f.json_schema.schema ?? {} };
  return undefined;
}

function parse(body: unknown): ChatRequest | string {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return "The request body must be a JSON object.";
  const b = body as Record<string, unknown>;
  if (typeof b.model !== "string" || b.model.length === 0) return "you must provide a model parameter";
  if (!Array.isArray(b.messages) || b.messages.length === 0) return "'messages' must be a non-empty array";
  const promptTexts: string[] = [];
  let lastUserText = "";
  for (const [i, m] of (b.messages as unknown[]).entries()) {
    if (typeof m !== "object" || m === null) return `Invalid type for 'messages[${i}]': expected an object.`;
    const { role, content } = m as { role?: unknown; content?: unknown };
    if (typeof role !== "string") return `Missing required parameter: 'messages[${i}].role'.`;
    const text = contentText(content);
    if (text === undefined) return `Invalid type for 'messages[${i}].content'.`;
    promptTexts.push(text);
    if (role === "user") lastUserText = text;
  }
  const max = b.max_completion_tokens ?? b.max_tokens;
  if (max !== undefined && max !== null && !(Number.isInteger(max) && (max as number) >= 1)) {
    return "Invalid 'max_tokens': expected an integer of at least 1.";
  }
  const stop = stopList(b.stop);
  if (stop === undefined) return "Invalid 'stop': expected a string or an array of strings.";
  const options = b.stream_options as { include_usage?: unknown } | null | undefined;
  const jsonFormat = jsonFormatOf(b.response_format);
  if (jsonFormat === undefined) return "Invalid 'response_format': expected type text, json_object, or json_schema with a name.";
  return {
    ...(jsonFormat ? { jsonFormat } : {}),
    model: b.model,
    stream: b.stream === true,
    includeUsage: options?.include_usage === true,
    maxTokens: typeof max === "number" ? max : undefined,
    stop,
    promptTexts,
    lastUserText,
  };
}

function finishOf(finish: FinishReason): string {
  return finish === "length" ? "length" : "stop";
}

/**
 * The usage object. Cached tokens are part of prompt_tokens and reasoning tokens part of
 * completion_tokens, as OpenAI counts them; the details are sent only when asked for (knobs), so
 * the default body stays as small as before.
 */
function usageJson(x: Exchange): string {
  const c0 = x.completion;
  const p = c0.promptTokens;
  const c = c0.tokens.length + c0.reasoningTokens;
  const totals = `{"prompt_tokens":${p},"completion_tokens":${c},"total_tokens":${p + c}`;
  if (c0.cachedTokens === 0 && c0.reasoningTokens === 0) return `${totals}}`;
  return (
    `${totals},"prompt_tokens_details":{"cached_tokens":${c0.cachedTokens},"audio_tokens":0},` +
    `"completion_tokens_details":{"reasoning_tokens":${c0.reasoningTokens},"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}`
  );
}

/** `{"id":…,"object":"chat.completion.chunk","created":…,"model":…,` — shared by every chunk of one stream. */
function chunkHead(x: Exchange): string {
  if (x.chunkHead === "") {
    x.chunkHead = `{"id":"${x.id}","object":"chat.completion.chunk","created":${x.created},"model":${JSON.stringify(x.request.model)},`;
  }
  return x.chunkHead;
}

const TOKEN_TAIL = `},"logprobs":null,"finish_reason":null}]}\n\n`;
const DONE = "data: [DONE]\n\n";

export const openai: Dialect = {
  name: "openai",
  chatPath: "/v1/chat/completions",
  defaultModel: "sim-gpt",
  get: { "/v1/models": (ids) => openaiModels(ids, 1_700_000_000) },
  banner: { label: "OpenAI", env: (url) => `OPENAI_BASE_URL=${url}/v1` },
  idPrefix: "chatcmpl-sim",
  idHeader: "x-request-id",
  streamContentType: "text/event-stream; charset=utf-8",
  parse,

  checkAuth(headers: Headers, apiKey: string): string | null {
    const auth = headers.authorization;
    if (typeof auth !== "string" || !auth.startsWith("Bearer ")) {
      return "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth.";
    }
    return auth.slice(7) === apiKey ? null : "Incorrect API key provided.";
  },

  checkHeaders: () => null,

  error(status: number, message: string, requestId: string, retryAfter: string | undefined): ErrorRendering {
    const headers: Record<string, string> = { "content-type": "application/json", "x-request-id": requestId };
    if (retryAfter !== undefined) {
      headers["retry-after"] = retryAfter;
      const seconds = Number(retryAfter);
      const ms = Number.isNaN(seconds) ? Date.parse(retryAfter) - Date.now() : seconds * 1000;
      headers["retry-after-ms"] = String(Math.max(0, Math.round(ms)));
    }
    return { body: errorJson(status, message), headers };
  },

  json(x: Exchange): string {
    return (
      `{"id":"${x.id}","object":"chat.completion","created":${x.created},"model":${JSON.stringify(x.request.model)},` +
      `"choices":[{"index":0,"message":{"role":"assistant","content":${JSON.stringify(x.completion.tokens.join(""))},` +
      `"refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"${finishOf(x.completion.finish)}"}],` +
      `"usage":${usageJson(x)},"service_tier":"default","system_fingerprint":null}`
    );
  },

  streamStart(x: Exchange): string {
    return `data: ${chunkHead(x)}"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null${TOKEN_TAIL}`;
  },

  streamToken(x: Exchange, i: number): string {
    return `data: ${chunkHead(x)}"choices":[{"index":0,"delta":{"content":${x.completion.quoted[i]}${TOKEN_TAIL}`;
  },

  streamEnd(x: Exchange): string {
    const head = chunkHead(x);
    const last = `data: ${head}"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"${finishOf(x.completion.finish)}"}]}\n\n`;
    return x.request.includeUsage ? `${last}data: ${head}"choices":[],"usage":${usageJson(x)}}\n\n${DONE}` : last + DONE;
  },

  streamMalformed(x: Exchange): string {
    return `data: ${chunkHead(x)}"choices":[{"index":0,"delta":{"content":"\n\n`;
  },

  streamError(status: number, message: string): string {
    return `data: ${errorJson(status, message)}\n\n`;
  },
};

/** GET /v1/models. */
export function openaiModels(ids: readonly string[], created: number): string {
  const data = ids.map((id) => `{"id":${JSON.stringify(id)},"object":"model","created":${created},"owned_by":"simulator"}`);
  return `{"object":"list","data":[${data.join(",")}]}`;
}

export { errorJson as openaiErrorJson };
