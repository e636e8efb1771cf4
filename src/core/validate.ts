import { invalidRequest, type FieldViolation } from "../errors/llm-error.js";
import type { GenerationRequest } from "./types.js";

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

/**
 * Checks a request's shape, collecting every violation so a caller can fix them
 * all at once; throws INVALID_REQUEST with a BadRequest listing them. Limits that
 * depend on the model (max output tokens, context window) are checked in admission.
 */
export function validateRequest(req: GenerationRequest, prefix = ""): void {
  const v: FieldViolation[] = [];
  const bad = (field: string, description: string) => v.push({ field: prefix + field, description });

  if (req.model.trim() === "") bad("model", "must name a model; ListModels lists them");
  else if (req.model.length > LIMITS.modelNameChars) bad("model", `must be at most ${LIMITS.modelNameChars} characters`);

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
  });

  if (req.cache.ttlSeconds > LIMITS.cacheTtlSeconds) bad("cache.ttl_seconds", `must be at most ${LIMITS.cacheTtlSeconds}`);

  const entries = Object.entries(req.metadata);
  if (entries.length > LIMITS.metadataEntries) bad("metadata", `must have at most ${LIMITS.metadataEntries} entries`);
  for (const [key, value] of entries) {
    if (key.length === 0 || key.length > LIMITS.metadataKeyChars) bad("metadata", `keys must be 1 to ${LIMITS.metadataKeyChars} characters`);
    if (value.length > LIMITS.metadataValueChars) bad(`metadata[${JSON.stringify(key.slice(0, 64))}]`, `must be at most ${LIMITS.metadataValueChars} characters`);
  }

  if (req.idempotencyKey.length > LIMITS.idempotencyKeyChars) {
    bad("idempotency_key", `must be at most ${LIMITS.idempotencyKeyChars} characters`);
  }

  if (v.length > 0) throw invalidRequest(v);
}
