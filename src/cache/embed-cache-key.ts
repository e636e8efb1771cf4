import { hash } from "node:crypto";
import type { EmbedRequest } from "../core/types.js";

/** Every Embed cache key starts with this (apart from generations'); bump the version when the encoding changes. */
export const EMBED_CACHE_KEY_PREFIX = "llm:v1:embed:";

/**
 * The response-cache key of an Embed call: SHA-256 (base64url) over a JSON array of the tenant,
 * the resolved model id, the inputs and the dimensions (null when unset): all that changes the
 * vectors. A fixed position per field, so no two requests encode alike.
 */
export function embedCacheKey(tenant: string, model: string, req: EmbedRequest): string {
  const canonical = JSON.stringify([tenant, model, req.inputs, req.dimensions ?? null]);
  return EMBED_CACHE_KEY_PREFIX + hash("sha256", canonical, "base64url");
}
