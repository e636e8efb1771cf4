/**
 * Ollama chat on the wire: `stream` defaults to true (NDJSON, one object a line, the last
 * with `done: true`, `done_reason` and the counts and durations in nanoseconds);
 * `stream: false` gives one object. Errors are `{error: "message"}`.
 */
import type { ChatRequest, Dialect, ErrorRendering, Exchange } from "./dialect.js";

function parse(body: unknown): ChatRequest | string {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return "invalid request body";
  const b = body as Record<string, unknown>;
  if (typeof b.model !== "string" || b.model.length === 0) return "model is required";
  const messages = b.messages ?? [];
  if (!Array.isArray(messages)) return "messages must be an array";
  const promptTexts: string[] = [];
  let lastUserText = "";
  for (const m of messages as unknown[]) {
    if (typeof m !== "object" || m === null) return "invalid message";
    const { role, content } = m as { role?: unknown; content?: unknown };
    if (typeof role !== "string") return "message role is required";
    if (content !== undefined && typeof content !== "string") return "message content must be a string";
    const text = content ?? "";
    promptTexts.push(text);
    if (role === "user") lastUserText = text;
  }
  const options = (b.options ?? {}) as Record<string, unknown>;
  if (typeof options !== "object" || options === null) return "options must be an object";
  const numPredict = options.num_predict;
  if (numPredict !== undefined && !Number.isInteger(numPredict)) return "num_predict must be an integer";
  const stop = options.stop ?? [];
  if (!Array.isArray(stop) || !stop.every((s) => typeof s === "string")) return "stop must be a list of strings";
  // format: "json", or a JSON schema object (structured outputs).
  const format = b.format;
  if (format !== undefined && format !== null && format !== "" && format !== "json" && (typeof format !== "object" || Array.isArray(format))) {
    return "format must be \"json\" or a JSON schema object";
  }
  return {
    ...(format === "json" ? { jsonFormat: { kind: "json_object" as const } } : {}),
    ...(typeof format === "object" && format !== null ? { jsonFormat: { kind: "json_schema" as const, schema: format } } : {}),
    model: b.model,
    stream: b.stream !== false,
    includeUsage: true,
    // Ollama: num_predict -1 (or any value below 1) means no limit.
    maxTokens: typeof numPredict === "number" && numPredict > 0 ? numPredict : undefined,
    stop: stop as string[],
    promptTexts,
    lastUserText,
  };
}

/** `{"model":…,"created_at":…,"message":{"role":"assistant","content":` — shared by every line. */
function lineHead(x: Exchange): string {
  if (x.chunkHead === "") {
    x.chunkHead =
      `{"model":${JSON.stringify(x.request.model)},"created_at":"${new Date(x.created * 1000).toISOString()}",` +
      `"message":{"role":"assistant","content":`;
  }
  return x.chunkHead;
}

/** The closing fields: done_reason, counts, and durations (ns) measured from arrival. */
function doneFields(x: Exchange): string {
  const c = x.completion;
  const total = Math.max(1, Math.round((performance.now() - x.startedAt) * 1e6));
  const promptEval = Math.round(total / 5);
  return (
    `"done_reason":"${c.finish === "length" ? "length" : "stop"}","done":true,"total_duration":${total},` +
    `"load_duration":0,"prompt_eval_count":${c.promptTokens},"prompt_eval_duration":${promptEval},` +
    `"eval_count":${c.tokens.length},"eval_duration":${total - promptEval}}`
  );
}

export const ollama: Dialect = {
  name: "ollama",
  chatPath: "/api/chat",
  defaultModel: "sim-llama",
  get: { "/api/tags": ollamaTags, "/api/version": () => OLLAMA_VERSION },
  claims: { pathPrefix: "/api/" },
  banner: { label: "Ollama", env: (url) => `OLLAMA_HOST=${url}` },
  idPrefix: "sim",
  idHeader: "x-request-id",
  streamContentType: "application/x-ndjson",
  parse,
  // Ollama has no authentication of its own.
  checkAuth: () => null,
  checkHeaders: () => null,

  error(_status: number, message: string, requestId: string, retryAfter: string | undefined): ErrorRendering {
    const headers: Record<string, string> = { "content-type": "application/json; charset=utf-8", "x-request-id": requestId };
    if (retryAfter !== undefined) headers["retry-after"] = retryAfter;
    return { body: `{"error":${JSON.stringify(message)}}`, headers };
  },

  json(x: Exchange): string {
    return `${lineHead(x)}${JSON.stringify(x.completion.tokens.join(""))}},${doneFields(x)}`;
  },

  streamStart: () => "",

  streamToken(x: Exchange, i: number): string {
    return `${lineHead(x)}${x.completion.quoted[i]}},"done":false}\n`;
  },

  streamEnd(x: Exchange): string {
    return `${lineHead(x)}""},${doneFields(x)}\n`;
  },

  streamMalformed(x: Exchange): string {
    return `${lineHead(x)}"\n`;
  },

  streamError(_status: number, message: string): string {
    return `{"error":${JSON.stringify(message)}}\n`;
  },
};

/** GET /api/tags. */
export function ollamaTags(ids: readonly string[]): string {
  const models = ids.map(
    (id) =>
      `{"name":${JSON.stringify(id)},"model":${JSON.stringify(id)},"modified_at":"2025-01-01T00:00:00Z","size":0,` +
      `"digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000",` +
      `"details":{"parent_model":"","format":"gguf","family":"sim","families":["sim"],"parameter_size":"0B","quantization_level":"none"}}`,
  );
  return `{"models":[${models.join(",")}]}`;
}

/** GET /api/version. */
export const OLLAMA_VERSION = `{"version":"0.12.0"}`;
