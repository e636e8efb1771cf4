/**
 * Embeddings on the wire, for the two vendors that have them: OpenAI's POST /v1/embeddings
 * (`input` a string or a list, `dimensions`, `encoding_format` "float" or "base64": the `openai`
 * SDK asks for base64 unless told otherwise, and decodes it) and Ollama's POST /api/embed (`input`
 * a string or a list, `dimensions`). Vectors are simVector's: deterministic from the text.
 */
import type { Dialect } from "./dialect.js";
import { ollama } from "./ollama.js";
import { openai } from "./openai.js";
import { countPromptWords } from "./text.js";
import { simVector } from "./vectors.js";

/** An embeddings request, whatever the vendor. */
export interface EmbedWireRequest {
  model: string;
  inputs: string[];
  dimensions: number | undefined;
  /** OpenAI `encoding_format: "base64"`: each vector as the base64 of its little-endian float32 bytes. */
  base64: boolean;
}

/** One vendor's embeddings endpoint: where, how its body reads, how its answer looks. */
export interface EmbedWire {
  /** The dialect whose auth, errors and request-id header apply. */
  readonly dialect: Dialect;
  readonly path: string;
  parse(body: unknown): EmbedWireRequest | string;
  render(req: EmbedWireRequest, vectors: readonly Float32Array[], promptTokens: number): string;
}

function inputsOf(input: unknown): string[] | string {
  if (typeof input === "string") return [input];
  if (Array.isArray(input) && input.length > 0 && input.every((s) => typeof s === "string")) return input as string[];
  return "input must be a string or a non-empty list of strings";
}

function common(body: unknown): { b: Record<string, unknown>; inputs: string[]; dimensions: number | undefined } | string {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return "invalid request body";
  const b = body as Record<string, unknown>;
  if (typeof b.model !== "string" || b.model.length === 0) return "model is required";
  const inputs = inputsOf(b.input);
  if (typeof inputs === "string") return inputs;
  const d = b.dimensions;
  if (d !== undefined && !(Number.isInteger(d) && (d as number) >= 1 && (d as number) <= 65_536)) return "dimensions must be a positive integer";
  return { b, inputs, dimensions: d as number | undefined };
}

function base64Of(vector: Float32Array): string {
  return Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).toString("base64");
}

const openaiEmbeddings: EmbedWire = {
  dialect: openai,
  path: "/v1/embeddings",
  parse(body) {
    const c = common(body);
    if (typeof c === "string") return c;
    const format = c.b.encoding_format ?? "float";
    if (format !== "float" && format !== "base64") return "encoding_format must be 'float' or 'base64'";
    return { model: c.b.model as string, inputs: c.inputs, dimensions: c.dimensions, base64: format === "base64" };
  },
  render(req, vectors, promptTokens) {
    const data = vectors.map((v, index) => ({ object: "embedding", index, embedding: req.base64 ? base64Of(v) : Array.from(v) }));
    return JSON.stringify({ object: "list", data, model: req.model, usage: { prompt_tokens: promptTokens, total_tokens: promptTokens } });
  },
};

const ollamaEmbed: EmbedWire = {
  dialect: ollama,
  path: "/api/embed",
  parse(body) {
    const c = common(body);
    if (typeof c === "string") return c;
    return { model: c.b.model as string, inputs: c.inputs, dimensions: c.dimensions, base64: false };
  },
  render(req, vectors, promptTokens) {
    return JSON.stringify({
      model: req.model,
      embeddings: vectors.map((v) => Array.from(v)),
      total_duration: 1_000_000,
      load_duration: 0,
      prompt_eval_count: promptTokens,
    });
  },
};

/** The embeddings endpoints by path. */
export const EMBED_ROUTES: ReadonlyMap<string, EmbedWire> = new Map([openaiEmbeddings, ollamaEmbed].map((w) => [w.path, w]));

/** The body of an answer to `req`: one vector per input, and the prompt's tokens (the simulator's word count). */
export function embedAnswer(wire: EmbedWire, req: EmbedWireRequest): string {
  return wire.render(req, req.inputs.map((text) => simVector(text, req.dimensions)), countPromptWords(req.inputs));
}
