/** Proto ↔ domain mapping: the only place that knows both shapes. */
import { create } from "@bufbuild/protobuf";
import { timestampFromDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import {
  CacheMode,
  CircuitState,
  FinishReason,
  GenerateResponseSchema,
  GetUsageResponseSchema,
  ModelSchema,
  Role,
  StreamGenerateResponseSchema,
  type GenerateRequest,
  type GenerateResponse,
  type GetUsageRequest,
  type GetUsageResponse,
  type Model,
  type StreamGenerateRequest,
  type StreamGenerateResponse,
  type UsageTotals as UsageTotalsMsg,
} from "../../gen/ts/llm/v1/llm_service_pb.js";
import type {
  CacheMode as DomainCacheMode,
  FinishReason as DomainFinishReason,
  GenerationEvent,
  GenerationRequest,
  GenerationResult,
  Role as DomainRole,
  TokenUsage,
  UsageReport,
  UsageTotals,
} from "../core/types.js";
import type { DeploymentConfig } from "../config.js";
import type { CatalogueModel } from "../router/catalogue.js";
import type { CircuitStateName } from "../router/circuit-breaker.js";
import { toResponseFormat } from "./response-format.js";

const ROLES: Partial<Record<Role, DomainRole>> = {
  [Role.SYSTEM]: "system",
  [Role.USER]: "user",
  [Role.ASSISTANT]: "assistant",
};

export const CACHE_MODES: Partial<Record<CacheMode, DomainCacheMode>> = {
  [CacheMode.UNSPECIFIED]: "default",
  [CacheMode.BYPASS]: "bypass",
  [CacheMode.FORCE]: "force",
  [CacheMode.REFRESH]: "refresh",
};

const FINISH_REASONS: Record<DomainFinishReason, FinishReason> = {
  stop: FinishReason.STOP,
  length: FinishReason.LENGTH,
  content_filter: FinishReason.CONTENT_FILTER,
  unspecified: FinishReason.UNSPECIFIED,
};

export function toGenerationRequest(req: GenerateRequest | StreamGenerateRequest): GenerationRequest {
  const responseFormat = toResponseFormat(req.responseFormat);
  return {
    model: req.model,
    // An unknown or unset role maps to undefined, which validation reports as a field violation.
    messages: req.messages.map((m) => ({ role: ROLES[m.role] as DomainRole, content: m.content })),
    system: req.system,
    ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
    ...(req.topP !== undefined ? { topP: req.topP } : {}),
    ...(req.maxOutputTokens !== undefined ? { maxOutputTokens: req.maxOutputTokens } : {}),
    stop: req.stop,
    ...(req.seed !== undefined ? { seed: req.seed } : {}),
    fallbackModels: req.fallbackModels,
    cache: { mode: CACHE_MODES[req.cache?.mode ?? CacheMode.UNSPECIFIED] ?? "default", ttlSeconds: req.cache?.ttlSeconds ?? 0 },
    metadata: req.metadata,
    idempotencyKey: req.idempotencyKey,
    ...(responseFormat ? { responseFormat } : {}),
  };
}

export function usageMsg(u: TokenUsage) {
  const input = BigInt(u.inputTokens);
  const output = BigInt(u.outputTokens);
  return {
    inputTokens: input,
    outputTokens: output,
    totalTokens: input + output,
    cachedInputTokens: BigInt(u.cachedInputTokens ?? 0),
    cacheWriteInputTokens: BigInt(u.cacheWriteInputTokens ?? 0),
    reasoningTokens: BigInt(u.reasoningTokens ?? 0),
  };
}

export function toGenerateResponse(r: GenerationResult): GenerateResponse {
  return create(GenerateResponseSchema, {
    id: r.id,
    model: r.model,
    provider: r.provider,
    text: r.text,
    finishReason: FINISH_REASONS[r.finishReason],
    usage: usageMsg(r.usage),
    costUsdNanos: r.costUsdNanos,
    cached: r.cached,
    attempts: r.attempts,
  });
}

export function toStreamResponse(e: GenerationEvent): StreamGenerateResponse {
  switch (e.type) {
    case "started":
      return create(StreamGenerateResponseSchema, {
        event: { case: "started", value: { id: e.id, model: e.model, provider: e.provider } },
      });
    case "delta":
      return create(StreamGenerateResponseSchema, { event: { case: "delta", value: { text: e.text } } });
    case "completed":
      return create(StreamGenerateResponseSchema, {
        event: {
          case: "completed",
          value: {
            finishReason: FINISH_REASONS[e.finishReason],
            usage: usageMsg(e.usage),
            costUsdNanos: e.costUsdNanos,
            cached: e.cached,
            attempts: e.attempts,
          },
        },
      });
  }
}

const CIRCUIT_STATES: Record<CircuitStateName, CircuitState> = {
  closed: CircuitState.CLOSED,
  open: CircuitState.OPEN,
  half_open: CircuitState.HALF_OPEN,
};

export function toModel(m: CatalogueModel, state: (deployment: DeploymentConfig) => CircuitStateName): Model {
  return create(ModelSchema, {
    id: m.id,
    aliases: m.aliases,
    provider: m.deployments[0]?.provider ?? "",
    contextWindow: BigInt(m.contextWindow),
    maxOutputTokens: BigInt(m.maxOutputTokens),
    inputPriceUsdNanosPerMillion: m.inputPriceNanosPerMillion,
    outputPriceUsdNanosPerMillion: m.outputPriceNanosPerMillion,
    cachedInputPriceUsdNanosPerMillion: m.cachedInputPriceNanosPerMillion,
    cacheWritePriceUsdNanosPerMillion: m.cacheWritePriceNanosPerMillion,
    capabilities: m.capabilities,
    deployments: m.deployments.map((d) => ({
      provider: d.provider,
      upstreamModel: d.model,
      weight: d.weight,
      state: CIRCUIT_STATES[state(d)],
    })),
  });
}

export function toUsageQuery(req: GetUsageRequest): { tenant: string; start?: Date; end?: Date } {
  return {
    tenant: req.tenant,
    ...(req.startTime ? { start: toDate(req.startTime) } : {}),
    ...(req.endTime ? { end: toDate(req.endTime) } : {}),
  };
}

/**
 * A Timestamp as a Date, to the millisecond below (so 9999-12-31T23:59:59.999999999Z stays in year
 * 9999); an invalid one (nanos outside 0..999,999,999, or seconds past what a Date holds) as an
 * invalid Date, which the core refuses.
 */
function toDate(ts: Timestamp): Date {
  if (!Number.isInteger(ts.nanos) || ts.nanos < 0 || ts.nanos > 999_999_999) return new Date(Number.NaN);
  return new Date(Number(ts.seconds) * 1000 + Math.floor(ts.nanos / 1_000_000));
}

function totalsMsg(t: UsageTotals): UsageTotalsMsg {
  return {
    $typeName: "llm.v1.UsageTotals",
    requests: BigInt(t.requests),
    succeeded: BigInt(t.succeeded),
    failed: BigInt(t.failed),
    cached: BigInt(t.cached),
    usage: { $typeName: "llm.v1.Usage", ...usageMsg(t) },
    costUsdNanos: t.costUsdNanos,
  };
}

export function toGetUsageResponse(r: UsageReport): GetUsageResponse {
  return create(GetUsageResponseSchema, {
    tenant: r.tenant,
    startTime: timestampFromDate(r.start),
    endTime: timestampFromDate(r.end),
    totals: totalsMsg(r.totals),
    byModel: r.byModel.map((m) => ({ model: m.model, totals: totalsMsg(m.totals) })),
    byKey: r.byKey.map((k) => ({ keyId: k.keyId, keyName: k.keyName, totals: totalsMsg(k.totals) })),
    byDay: r.byDay.map((d) => ({ day: d.day, totals: totalsMsg(d.totals) })),
  });
}
