import { LlmError, invalidRequest, type FieldViolation } from "../errors/llm-error.js";
import type { EmbedRequest, GenerationRequest } from "./types.js";

export const LIMITS = {
  modelNameChars: 128,
  messages: 1000,
  contentChars: 1_000_000,
  stopSequences: 4,
  stopChars: 64,
  fallbackModels: 5,
  metadataEntries: 16,
  metadataKeyChars: 64,
  metadataValueChars: 512,
  idempotencyKeyChars: 128,
  cacheTtlSeconds: 7 * 24 * 3600,
} as const;

/** A high surrogate not followed by a low one, or a low one not preceded by a high one (UTF-16 code units: no `u` flag). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, "g");

/**
 * Why a caller's text cannot be stored as it is, or undefined when it can. Postgres refuses
 * U+0000 in text and jsonb, and an unpaired surrogate (which a Connect JSON caller can send as
 * `"\ud800"`) in jsonb: text that reaches the ledger is checked here, so a call either fails up
 * front or is recorded, never served and then lost to a refused row.
 */
export function unstorableText(text: string): string | undefined {
  if (text.includes("\0")) return "must not contain the NUL character (U+0000)";
  if (LONE_SURROGATE.test(text)) return "must be well-formed Unicode (no unpaired surrogate)";
  return undefined;
}

/**
 * The text as the ledger can store it: NUL characters and unpaired surrogates replaced by U+FFFD.
 * For the row of a call refused because of such text (validateRequest), which is still recorded.
 */
export function storableText(text: string): string {
  if (unstorableText(text) === undefined) return text;
  return text.replace(LONE_SURROGATES, "\uFFFD").replaceAll("\0", "\uFFFD");
}

/** google.protobuf.Timestamp's range, which Postgres's timestamptz holds too (and JS Dates, past it, may not). */
const MIN_MS = Date.parse("0001-01-01T00:00:00Z");
const MAX_MS = Date.parse("+010000-01-01T00:00:00Z");
export const TIMESTAMP_RANGE = "must be a valid time from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z";

/** Whether a time is one a google.protobuf.Timestamp may carry (and the ledger can compare with). */
export function isTimestampInRange(time: Date): boolean {
  const ms = time.getTime();
  return Number.isFinite(ms) && ms >= MIN_MS && ms < MAX_MS;
}

/**
 * Checks a request's shape, collecting every violation so a caller can fix them
 * all at once; throws INVALID_REQUEST with a BadRequest listing them. Limits that
 * depend on the model (max output tokens, context window) are checked in admission.
 */
export function validateRequest(req: GenerationRequest, prefix = ""): void {
  const v: FieldViolation[] = [];
  const bad = (field: string, description: string) => v.push({ field: prefix + field, description });

  const storable = (field: string, text: string) => {
    const problem = unstorableText(text);
    if (problem !== undefined) bad(field, problem);
  };

  if (req.model.trim() === "") bad("model", "must name a model; ListModels lists them");
  else if (req.model.length > LIMITS.modelNameChars) bad("model", `must be at most ${LIMITS.modelNameChars} characters`);
  else storable("model", req.model);

  if (req.messages.length === 0) bad("messages", "must contain at least one message");
  if (req.messages.length > LIMITS.messages) bad("messages", `must contain at most ${LIMITS.messages} messages`);
  req.messages.slice(0, LIMITS.messages).forEach((m, i) => {
    if (m.role === undefined) bad(`messages[${i}].role`, "must be ROLE_SYSTEM, ROLE_USER or ROLE_ASSISTANT");
    if (m.content.length === 0) bad(`messages[${i}].content`, "must not be empty");
    if (m.content.length > LIMITS.contentChars) bad(`messages[${i}].content`, `must be at most ${LIMITS.contentChars} characters`);
  });
  if (req.system.length > LIMITS.contentChars) bad("system", `must be at most ${LIMITS.contentChars} characters`);

  if (req.temperature !== undefined && !(req.temperature >= 0 && req.temperature <= 2)) {
    bad("temperature", "must be between 0 and 2");
  }
  if (req.topP !== undefined && !(req.topP > 0 && req.topP <= 1)) bad("top_p", "must be greater than 0 and at most 1");
  if (req.maxOutputTokens !== undefined && !(req.maxOutputTokens >= 1)) bad("max_output_tokens", "must be at least 1");

  if (req.stop.length > LIMITS.stopSequences) bad("stop", `must contain at most ${LIMITS.stopSequences} sequences`);
  req.stop.forEach((s, i) => {
    if (s.length === 0 || s.length > LIMITS.stopChars) bad(`stop[${i}]`, `must be 1 to ${LIMITS.stopChars} characters`);
  });

  if (req.fallbackModels.length > LIMITS.fallbackModels) {
    bad("fallback_models", `must contain at most ${LIMITS.fallbackModels} models`);
  }
  req.fallbackModels.forEach((m, i) => {
    if (m.trim() === "" || m.length > LIMITS.modelNameChars) bad(`fallback_models[${i}]`, "must name a model");
    else storable(`fallback_models[${i}]`, m);
  });

  if (req.cache.ttlSeconds > LIMITS.cacheTtlSeconds) bad("cache.ttl_seconds", `must be at most ${LIMITS.cacheTtlSeconds}`);

  const entries = Object.entries(req.metadata);
  if (entries.length > LIMITS.metadataEntries) bad("metadata", `must have at most ${LIMITS.metadataEntries} entries`);
  for (const [key, value] of entries) {
    // The field names the entry by its key, made printable (JSON escapes NUL and unpaired surrogates).
    const field = `metadata[${JSON.stringify(key.slice(0, 64))}]`;
    if (key.length === 0 || key.length > LIMITS.metadataKeyChars) bad("metadata", `keys must be 1 to ${LIMITS.metadataKeyChars} characters`);
    else {
      const problem = unstorableText(key);
      if (problem !== undefined) bad(field, `the key ${problem}`);
    }
    if (value.length > LIMITS.metadataValueChars) bad(field, `must be at most ${LIMITS.metadataValueChars} characters`);
    else storable(field, value);
  }

  if (req.idempotencyKey.length > LIMITS.idempotencyKeyChars) {
    bad("idempotency_key", `must be at most ${LIMITS.idempotencyKeyChars} characters`);
  } else storable("idempotency_key", req.idempotencyKey);

  if (v.length > 0) throw invalidRequest(v);
}

/** Bounds of an Embed request: how many inputs, how long each, how long a vector. */
export const EMBED_LIMITS = {
  inputs: 256,
  inputChars: 100_000,
  maxDimensions: 8192,
} as const;

/**
 * Checks an Embed request's shape, as validateRequest does a generation's (model, fallbacks,
 * cache TTL, metadata by the same rules): 1 to 256 non-empty inputs of at most 100,000
 * characters, dimensions from 1 to 8192. Throws INVALID_REQUEST with a BadRequest.
 */
export function validateEmbedRequest(req: EmbedRequest): void {
  const v: FieldViolation[] = [];
  try {
    // The shared fields, checked by the generation rules (one placeholder message stands in for the inputs).
    validateRequest({
      model: req.model,
      messages: [{ role: "user", content: "-" }],
      system: "",
      stop: [],
      fallbackModels: req.fallbackModels,
      cache: req.cache,
      metadata: req.metadata,
      idempotencyKey: "",
    });
  } catch (err) {
    if (!(err instanceof LlmError) || err.fieldViolations.length === 0) throw err;
    v.push(...err.fieldViolations);
  }
  if (req.inputs.length === 0) v.push({ field: "inputs", description: "must contain at least one input" });
  if (req.inputs.length > EMBED_LIMITS.inputs) v.push({ field: "inputs", description: `must contain at most ${EMBED_LIMITS.inputs} inputs` });
  req.inputs.slice(0, EMBED_LIMITS.inputs).forEach((text, i) => {
    if (text.length === 0) v.push({ field: `inputs[${i}]`, description: "must not be empty" });
    else if (text.length > EMBED_LIMITS.inputChars) v.push({ field: `inputs[${i}]`, description: `must be at most ${EMBED_LIMITS.inputChars} characters` });
  });
  if (req.dimensions !== undefined && !(Number.isInteger(req.dimensions) && req.dimensions >= 1 && req.dimensions <= EMBED_LIMITS.maxDimensions)) {
    v.push({ field: "dimensions", description: `must be from 1 to ${EMBED_LIMITS.maxDimensions}` });
  }
  if (v.length > 0) throw invalidRequest(v);
}
