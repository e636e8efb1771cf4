/** Proto ↔ domain mapping of the Embed RPC. */
import { create } from "@bufbuild/protobuf";
import { CacheMode, EmbedResponseSchema, type EmbedRequest as EmbedRequestMsg, type EmbedResponse } from "../../gen/ts/llm/v1/llm_service_pb.js";
import type { EmbedRequest, EmbedResult } from "../core/types.js";
import { CACHE_MODES, usageMsg } from "./mappers.js";

export function toEmbedRequest(req: EmbedRequestMsg): EmbedRequest {
  return {
    model: req.model,
    inputs: req.inputs,
    ...(req.dimensions !== undefined ? { dimensions: req.dimensions } : {}),
    fallbackModels: req.fallbackModels,
    cache: { mode: CACHE_MODES[req.cache?.mode ?? CacheMode.UNSPECIFIED] ?? "default", ttlSeconds: req.cache?.ttlSeconds ?? 0 },
    metadata: req.metadata,
  };
}

export function toEmbedResponse(r: EmbedResult): EmbedResponse {
  return create(EmbedResponseSchema, {
    id: r.id,
    model: r.model,
    provider: r.provider,
    embeddings: r.vectors.map((v, index) => ({ index, values: Array.from(v) })),
    usage: usageMsg(r.usage),
    costUsdNanos: r.costUsdNanos,
    cached: r.cached,
    attempts: r.attempts,
  });
}
