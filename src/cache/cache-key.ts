import { hash } from "node:crypto";
import type { GenerationRequest, ResponseFormat } from "../core/types.js";

/** Every response-cache key starts with this; bump the version when the encoding below changes. */
export const CACHE_KEY_PREFIX = "llm:v1:cache:";

export interface CacheKeyInput {
  /** The caller's tenant: a cache entry never answers another tenant. */
  tenant: string;
  /** The model id after alias resolution, so an alias and its target share entries. */
  model: string;
  request: GenerationRequest;
}

/**
 * The response-cache key: SHA-256 (base64url) over a canonical encoding of everything that can
 * change the output — tenant, resolved model, system, messages (role + content), temperature,
 * top_p, max_output_tokens, stop, seed, response format (not its pass-through flag: only answers
 * that match are stored, and they answer both kinds of caller). Metadata, the cache policy, the idempotency key and the
 * fallback models are left out: they do not change what the model says.
 *
 * The encoding is a JSON array with one fixed position per field, so strings are quoted and
 * escaped and no two different inputs can produce the same bytes by concatenation; an absent
 * sampling parameter is `null`, distinct from every number (0 included).
 */
export function cacheKey(input: CacheKeyInput): string {
  const req = input.request;
  const canonical = JSON.stringify([
    input.tenant,
    input.model,
    req.system,
    req.messages.map((m) => [m.role, m.content]),
    req.temperature ?? null,
    req.topP ?? null,
    req.maxOutputTokens ?? null,
    req.stop,
    req.seed === undefined ? null : req.seed.toString(),
    // Only when set, so a text request's key is the one it always was.
    ...(req.responseFormat && req.responseFormat.type !== "text" ? [responseFormatKey(req.responseFormat)] : []),
  ]);
  return CACHE_KEY_PREFIX + hash("sha256", canonical, "base64url");
}

/** A JSON response format's part of the key. */
function responseFormatKey(format: Exclude<ResponseFormat, { type: "text" }>): unknown[] {
  if (format.type === "json_object") return ["json_object"];
  return ["json_schema", format.name, format.schemaJson, format.strict];
}
