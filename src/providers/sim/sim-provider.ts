import type { DeploymentConfig } from "../../config.js";
import { abortReason, sleep } from "../../core/abort.js";
import { jsonText, jsonTokens, type JsonMode } from "../../simulator/json-output.js";
import { fnv1a, mulberry32 } from "../../simulator/prng.js";
import { countPromptTokens, countTextTokens, splitTokens } from "../../core/tokens.js";
import { simVector } from "../../simulator/vectors.js";
import type { FinishReason, TokenUsage } from "../../core/types.js";
import { LlmError } from "../../errors/llm-error.js";
import { ERROR_REASONS, type ErrorReason } from "../../errors/taxonomy.js";
import type { AttemptOptions, DeltaSink, EmbedDone, EmbedProviderRequest, Provider, ProviderDone, ProviderRequest } from "../provider.js";

const LOREM = (
  "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore " +
  "magna aliqua enim ad minim veniam quis nostrud exercitation ullamco laboris nisi aliquip ex ea commodo consequat " +
  "duis aute irure in reprehenderit voluptate velit esse cillum fugiat nulla pariatur excepteur sint occaecat " +
  "cupidatat non proident sunt culpa qui officia deserunt mollit anim id est laborum"
).split(" ");

function loremTokens(request: ProviderRequest): string[] {
  const prompt = request.system + "\u0000" + request.messages.map((m) => `${m.role}:${m.content}`).join("\u0000");
  const random = mulberry32(fnv1a(prompt + (request.seed?.toString() ?? "")));
  const length = 16 + Math.floor(random() * 48);
  const words: string[] = [];
  for (let i = 0; i < length; i++) {
    const word = LOREM[Math.floor(random() * LOREM.length)] ?? "lorem";
    words.push(i === length - 1 ? `${word}.` : `${word} `);
  }
  const first = words[0] ?? "";
  words[0] = first.charAt(0).toUpperCase() + first.slice(1);
  return words;
}

/** JSON mode: an answer built from the format (metadata `sim-json`: invalid or not-json for a wrong one). */
function jsonModeTokens(request: ProviderRequest): string[] | undefined {
  const format = request.responseFormat;
  if (!format) return undefined;
  const knob = request.metadata["sim-json"];
  const mode: JsonMode = knob === "invalid" || knob === "not-json" ? knob : "valid";
  const prompt = request.messages.map((m) => m.content).join("\u0000");
  const random = mulberry32(fnv1a(prompt));
  const text = jsonText(format.type === "json_object" ? { kind: "json_object" } : { kind: "json_schema", schema: format.schema }, mode, random);
  return jsonTokens(text);
}

function echoTokens(request: ProviderRequest): string[] {
  const lastUser = [...request.messages].reverse().find((m) => m.role === "user");
  return splitTokens(lastUser?.content ?? request.system);
}

function numberOption(deployment: DeploymentConfig, key: string, fallback: number): number {
  const v = deployment.options[key];
  return typeof v === "number" ? v : fallback;
}

/** Knobs a test sets through caller metadata; they affect only the sim provider. */
interface Script {
  failReason?: ErrorReason;
  failAfterTokens: number;
  stallMs: number;
  interTokenMs?: number;
  retryAfterMs?: number;
  /** Usage detail to report: prompt tokens read from and written to the cache, hidden reasoning tokens. */
  cachedTokens: number;
  cacheWriteTokens: number;
  reasoningTokens: number;
}

/** A count from metadata: a non-negative integer, else 0, capped at a million. */
function countOf(metadata: Record<string, string>, key: string): number {
  const n = Number(metadata[key] ?? 0);
  return Number.isSafeInteger(n) && n > 0 ? Math.min(n, 1_000_000) : 0;
}

function scriptOf(metadata: Record<string, string>): Script {
  const fail = metadata["sim-fail"];
  const failReason = ERROR_REASONS.find((r) => r === fail);
  const retryAfter = Number(metadata["sim-retry-after-ms"] ?? NaN);
  const interToken = Number(metadata["sim-inter-token-ms"] ?? NaN);
  return {
    ...(failReason ? { failReason } : {}),
    failAfterTokens: Math.max(0, Number(metadata["sim-fail-after"] ?? 0) || 0),
    stallMs: Math.max(0, Number(metadata["sim-stall-ms"] ?? 0) || 0),
    ...(Number.isFinite(retryAfter) && retryAfter >= 0 ? { retryAfterMs: retryAfter } : {}),
    ...(Number.isFinite(interToken) && interToken >= 0 ? { interTokenMs: Math.min(interToken, 10_000) } : {}),
    cachedTokens: countOf(metadata, "sim-cached-tokens"),
    cacheWriteTokens: countOf(metadata, "sim-cache-write-tokens"),
    reasoningTokens: countOf(metadata, "sim-reasoning-tokens"),
  };
}

/**
 * The built-in provider: deterministic text derived from the prompt ("echo"
 * repeats the last user message, "lorem" writes seeded lorem ipsum), streamed
 * token by token with configurable time-to-first-token and inter-token delay,
 * with honest token counts and scripted failures for tests:
 * metadata `sim-fail` (an error reason), `sim-fail-after` (tokens sent first),
 * `sim-stall-ms` (wait before the first token), `sim-inter-token-ms`, `sim-retry-after-ms`;
 * and usage detail as a real provider reports it: `sim-cached-tokens` and
 * `sim-cache-write-tokens` (parts of the prompt, cut to it), `sim-reasoning-tokens` (hidden
 * output, added to the output count); with a JSON response format, a deterministic JSON answer
 * (simulator/json-output.ts), `sim-json: invalid` or `not-json` for a wrong one.
 */
export class SimProvider implements Provider {
  readonly name = "sim";

  async generate(deployment: DeploymentConfig, request: ProviderRequest, options: AttemptOptions, sink: DeltaSink): Promise<ProviderDone> {
    const { signal } = options;
    const script = scriptOf(request.metadata);
    const ttftMs = numberOption(deployment, "ttftMs", 0);
    const interTokenMs = script.interTokenMs ?? numberOption(deployment, "interTokenMs", 0);
    const all = jsonModeTokens(request) ?? (deployment.model === "lorem" ? loremTokens(request) : echoTokens(request));
    const inputTokens = countPromptTokens(request.system, request.messages);

    let finishReason: FinishReason = "stop";
    let tokens = all;
    if (tokens.length > request.maxOutputTokens) {
      tokens = tokens.slice(0, request.maxOutputTokens);
      finishReason = "length";
    }
    const text = tokens.join("");
    const stopAt = request.stop.reduce((at, s) => {
      const i = text.indexOf(s);
      return i >= 0 && i < at ? i : at;
    }, Infinity);
    if (stopAt !== Infinity) {
      tokens = splitTokens(text.slice(0, stopAt));
      finishReason = "stop";
    }

    await sleep(script.stallMs + ttftMs, signal);
    let sent = 0;
    for (const token of tokens) {
      if (script.failReason && sent >= script.failAfterTokens) break;
      if (sent > 0 && interTokenMs > 0) await sleep(interTokenMs, signal);
      if (signal.aborted) throw abortReason(signal);
      sent++;
      if (!sink.delta(token)) await sink.drained();
    }
    if (script.failReason) {
      throw new LlmError(script.failReason, `sim: scripted ${script.failReason}`, {
        ...(script.retryAfterMs !== undefined ? { retryAfterMs: script.retryAfterMs } : {}),
      });
    }
    return { finishReason, usage: usageOf(inputTokens, sent, script) };
  }

  /**
   * Deterministic unit vectors (simulator/vectors.ts: the same the upstream simulator serves),
   * `dimensions` long (256 by default), after the deployment's time to first token; the
   * scripted failures (`sim-fail`, `sim-stall-ms`, `sim-retry-after-ms`) apply.
   */
  async embed(deployment: DeploymentConfig, request: EmbedProviderRequest, options: AttemptOptions): Promise<EmbedDone> {
    const script = scriptOf(request.metadata);
    await sleep(script.stallMs + numberOption(deployment, "ttftMs", 0), options.signal);
    if (options.signal.aborted) throw abortReason(options.signal);
    if (script.failReason) {
      throw new LlmError(script.failReason, `sim: scripted ${script.failReason}`, {
        ...(script.retryAfterMs !== undefined ? { retryAfterMs: script.retryAfterMs } : {}),
      });
    }
    let inputTokens = 0;
    for (const text of request.inputs) inputTokens += countTextTokens(text);
    return { vectors: request.inputs.map((text) => simVector(text, request.dimensions)), usage: { inputTokens, outputTokens: 0 } };
  }
}

/** The usage to report: the detail asked for, as parts of the counts (a detail of 0 left out). */
function usageOf(inputTokens: number, sent: number, script: Script): TokenUsage {
  const cached = Math.min(script.cachedTokens, inputTokens);
  const write = Math.min(script.cacheWriteTokens, inputTokens - cached);
  const usage: TokenUsage = { inputTokens, outputTokens: sent + script.reasoningTokens };
  if (cached > 0) usage.cachedInputTokens = cached;
  if (write > 0) usage.cacheWriteInputTokens = write;
  if (script.reasoningTokens > 0) usage.reasoningTokens = script.reasoningTokens;
  return usage;
}
