/**
 * OpenTelemetry GenAI semantic conventions for an upstream call (a provider attempt span) and
 * for a gateway call. Names come from @opentelemetry/semantic-conventions/incubating.
 *
 * Prompt and completion text go on spans only with capture on (OTEL_CAPTURE_CONTENT=true), as
 * gen_ai.system_instructions / gen_ai.input.messages / gen_ai.output.messages JSON strings.
 */
import type { Attributes } from "@opentelemetry/api";
import {
  ATTR_GEN_AI_INPUT_MESSAGES,
  ATTR_GEN_AI_OPERATION_NAME,
  ATTR_GEN_AI_OUTPUT_MESSAGES,
  ATTR_GEN_AI_PROVIDER_NAME,
  ATTR_GEN_AI_REQUEST_MAX_TOKENS,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_GEN_AI_REQUEST_SEED,
  ATTR_GEN_AI_REQUEST_STOP_SEQUENCES,
  ATTR_GEN_AI_REQUEST_STREAM,
  ATTR_GEN_AI_REQUEST_TEMPERATURE,
  ATTR_GEN_AI_REQUEST_TOP_P,
  ATTR_GEN_AI_RESPONSE_FINISH_REASONS,
  ATTR_GEN_AI_RESPONSE_MODEL,
  ATTR_GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
  ATTR_GEN_AI_SYSTEM,
  ATTR_GEN_AI_SYSTEM_INSTRUCTIONS,
  ATTR_GEN_AI_USAGE_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_OUTPUT_TOKENS,
  GEN_AI_OPERATION_NAME_VALUE_CHAT,
} from "@opentelemetry/semantic-conventions/incubating";
import type { ChatMessage, FinishReason, TokenUsage } from "../core/types.js";

export const GEN_AI = {
  operation: ATTR_GEN_AI_OPERATION_NAME,
  provider: ATTR_GEN_AI_PROVIDER_NAME,
  system: ATTR_GEN_AI_SYSTEM,
  requestModel: ATTR_GEN_AI_REQUEST_MODEL,
  responseModel: ATTR_GEN_AI_RESPONSE_MODEL,
  temperature: ATTR_GEN_AI_REQUEST_TEMPERATURE,
  topP: ATTR_GEN_AI_REQUEST_TOP_P,
  maxTokens: ATTR_GEN_AI_REQUEST_MAX_TOKENS,
  seed: ATTR_GEN_AI_REQUEST_SEED,
  stop: ATTR_GEN_AI_REQUEST_STOP_SEQUENCES,
  stream: ATTR_GEN_AI_REQUEST_STREAM,
  inputTokens: ATTR_GEN_AI_USAGE_INPUT_TOKENS,
  outputTokens: ATTR_GEN_AI_USAGE_OUTPUT_TOKENS,
  finishReasons: ATTR_GEN_AI_RESPONSE_FINISH_REASONS,
  timeToFirstChunk: ATTR_GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
  systemInstructions: ATTR_GEN_AI_SYSTEM_INSTRUCTIONS,
  inputMessages: ATTR_GEN_AI_INPUT_MESSAGES,
  outputMessages: ATTR_GEN_AI_OUTPUT_MESSAGES,
} as const;

export const CHAT = GEN_AI_OPERATION_NAME_VALUE_CHAT;

/** The event marking a call's or an attempt's first token. */
export const FIRST_TOKEN_EVENT = "gen_ai.first_token";

/** Every attribute that can hold prompt or completion text (a test checks none appears without capture). */
export const CONTENT_ATTRIBUTES: readonly string[] = [GEN_AI.systemInstructions, GEN_AI.inputMessages, GEN_AI.outputMessages];

/** The request half of a provider attempt: what was asked of which model where. */
export interface AttemptRequest {
  system: string;
  messages: ChatMessage[];
  temperature?: number;
  topP?: number;
  maxOutputTokens: number;
  stop: string[];
  seed?: bigint;
}

/** Span name per the conventions: "{operation} {model}". */
export function attemptSpanName(model: string): string {
  return `${CHAT} ${model}`;
}

export function attemptAttributes(provider: string, model: string, req: AttemptRequest, captureContent: boolean): Attributes {
  const attributes: Attributes = {
    [GEN_AI.operation]: CHAT,
    [GEN_AI.provider]: provider,
    // The attribute gen_ai.provider.name replaced, still read by many backends.
    [GEN_AI.system]: provider,
    [GEN_AI.requestModel]: model,
    [GEN_AI.maxTokens]: req.maxOutputTokens,
    [GEN_AI.stream]: true,
  };
  if (req.temperature !== undefined) attributes[GEN_AI.temperature] = req.temperature;
  if (req.topP !== undefined) attributes[GEN_AI.topP] = req.topP;
  if (req.seed !== undefined) attributes[GEN_AI.seed] = Number(req.seed);
  if (req.stop.length > 0) attributes[GEN_AI.stop] = req.stop;
  if (captureContent) {
    if (req.system !== "") attributes[GEN_AI.systemInstructions] = JSON.stringify([{ type: "text", content: req.system }]);
    attributes[GEN_AI.inputMessages] = JSON.stringify(
      req.messages.map((m) => ({ role: m.role, parts: [{ type: "text", content: m.content }] })),
    );
  }
  return attributes;
}

export function responseAttributes(model: string, finishReason: FinishReason, usage: TokenUsage): Attributes {
  return {
    [GEN_AI.responseModel]: model,
    [GEN_AI.finishReasons]: [finishReason],
    [GEN_AI.inputTokens]: usage.inputTokens,
    [GEN_AI.outputTokens]: usage.outputTokens,
  };
}

export function outputAttributes(text: string, finishReason: FinishReason): Attributes {
  return {
    [GEN_AI.outputMessages]: JSON.stringify([{ role: "assistant", parts: [{ type: "text", content: text }], finish_reason: finishReason }]),
  };
}

/** The GenAI operation of an Embed call and its attempts. */
export const EMBEDDINGS_OPERATION = "embeddings";

/** The request half of an embeddings attempt (no input text: it is not captured for embeddings). */
export function embedAttemptAttributes(provider: string, model: string, req: { inputs: readonly string[]; dimensions?: number }): Attributes {
  return {
    [GEN_AI.operation]: EMBEDDINGS_OPERATION,
    [GEN_AI.provider]: provider,
    [GEN_AI.system]: provider,
    [GEN_AI.requestModel]: model,
    "llm.embed.inputs": req.inputs.length,
    ...(req.dimensions !== undefined ? { "gen_ai.embeddings.dimension.count": req.dimensions } : {}),
  };
}
