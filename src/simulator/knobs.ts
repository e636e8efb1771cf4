/**
 * Knobs: parsed from `x-sim-*` request headers, from options and CLI flags, merged
 * (header over script step over run-level), bounded, and the per-key failure counters
 * behind `x-sim-fail-times`.
 */
import type { UsageDetail } from "./dialect.js";
import type { Fault, JsonMode, SimulatorKnobs, TextMode } from "./types.js";

/** The request headers a test uses to script one call. */
export const KNOB_HEADERS = {
  latencyMs: "x-sim-latency-ms",
  ttftMs: "x-sim-ttft-ms",
  interTokenMs: "x-sim-inter-token-ms",
  outputTokens: "x-sim-output-tokens",
  status: "x-sim-status",
  retryAfter: "x-sim-retry-after",
  fault: "x-sim-fault",
  text: "x-sim-text",
  cachedTokens: "x-sim-cached-tokens",
  cacheWriteTokens: "x-sim-cache-write-tokens",
  reasoningTokens: "x-sim-reasoning-tokens",
  json: "x-sim-json",
  failTimes: "x-sim-fail-times",
  failKey: "x-sim-fail-key",
  tag: "x-sim-tag",
} as const;

/** A knob with a value the simulator cannot use: the request gets a 400 naming it. */
export class KnobError extends Error {
  override readonly name = "KnobError";
}

const MAX_OUTPUT_TOKENS = 100_000;

function count(name: string, value: string): number {
  if (!/^\d{1,9}$/.test(value)) throw new KnobError(`${name} must be a non-negative integer, got ${JSON.stringify(value)}`);
  return Number(value);
}

export function parseStatus(value: string, name: string = KNOB_HEADERS.status): number {
  const n = count(name, value);
  if (n !== 200 && (n < 400 || n > 599)) throw new KnobError(`${name} must be 200 or 400–599, got ${n}`);
  return n;
}

export function parseFault(value: string, name: string = KNOB_HEADERS.fault): Fault {
  const [kind, arg] = value.trim().split(":", 2) as [string, string | undefined];
  switch (kind) {
    case "reset":
    case "stall":
      if (arg === undefined) return { kind };
      break;
    case "malformed":
      return { kind, tokens: arg === undefined ? 1 : count(name, arg) };
    case "cut-after":
    case "stall-after":
    case "error-after":
      if (arg !== undefined) return { kind, tokens: count(name, arg) };
      break;
  }
  throw new KnobError(
    `${name} must be reset, stall, malformed[:n], cut-after:n, stall-after:n or error-after:n; got ${JSON.stringify(value)}`,
  );
}

export function parseRetryAfter(value: string, name: string = KNOB_HEADERS.retryAfter): string {
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v) || !Number.isNaN(Date.parse(v))) return v;
  throw new KnobError(`${name} must be seconds or an HTTP date, got ${JSON.stringify(value)}`);
}

export function parseText(value: string, name: string = KNOB_HEADERS.text): TextMode {
  if (value === "lorem" || value === "echo") return value;
  throw new KnobError(`${name} must be lorem or echo, got ${JSON.stringify(value)}`);
}

export function parseJsonMode(value: string, name: string = KNOB_HEADERS.json): JsonMode {
  if (value === "valid" || value === "invalid" || value === "not-json") return value;
  throw new KnobError(`${name} must be valid, invalid or not-json, got ${JSON.stringify(value)}`);
}

/** Parses one knob by its short name ("latency-ms", "fault", …): shared by headers and the CLI. */
export function parseKnob(knobs: SimulatorKnobs, key: keyof SimulatorKnobs, value: string, name: string): void {
  switch (key) {
    case "latencyMs":
    case "ttftMs":
    case "interTokenMs":
      knobs[key] = count(name, value);
      return;
    case "outputTokens":
    case "cachedTokens":
    case "cacheWriteTokens":
    case "reasoningTokens":
      knobs[key] = Math.min(count(name, value), MAX_OUTPUT_TOKENS);
      return;
    case "status":
      knobs.status = parseStatus(value, name);
      return;
    case "retryAfter":
      knobs.retryAfter = parseRetryAfter(value, name);
      return;
    case "fault":
      knobs.fault = parseFault(value, name);
      return;
    case "text":
      knobs.text = parseText(value, name);
      return;
    case "json":
      knobs.json = parseJsonMode(value, name);
      return;
  }
}

const KNOB_KEYS = [
  "latencyMs",
  "ttftMs",
  "interTokenMs",
  "outputTokens",
  "status",
  "retryAfter",
  "fault",
  "text",
  "cachedTokens",
  "cacheWriteTokens",
  "reasoningTokens",
  "json",
] as const;

type Headers = Readonly<Record<string, string | string[] | undefined>>;

function header(headers: Headers, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export interface HeaderKnobs {
  knobs: SimulatorKnobs;
  failTimes: number | undefined;
  failKey: string;
}

const NO_KNOBS: HeaderKnobs = Object.freeze({ knobs: Object.freeze({}), failTimes: undefined, failKey: "" });

/** Reads the `x-sim-*` headers; throws KnobError on a value it cannot use. */
export function knobsFromHeaders(headers: Headers): HeaderKnobs {
  let knobs: SimulatorKnobs | undefined;
  for (const key of KNOB_KEYS) {
    const name = KNOB_HEADERS[key];
    const value = header(headers, name);
    if (value === undefined) continue;
    knobs ??= {};
    parseKnob(knobs, key, value, name);
  }
  const failTimesRaw = header(headers, KNOB_HEADERS.failTimes);
  const failKey = header(headers, KNOB_HEADERS.failKey);
  if (knobs === undefined && failTimesRaw === undefined && failKey === undefined) return NO_KNOBS;
  return {
    knobs: knobs ?? {},
    failTimes: failTimesRaw === undefined ? undefined : count(KNOB_HEADERS.failTimes, failTimesRaw),
    failKey: failKey ?? "",
  };
}

/** The knobs one request runs with: every delay bounded, every field decided. */
export interface ResolvedKnobs {
  latencyMs: number;
  ttftMs: number;
  interTokenMs: number;
  outputTokens: number | undefined;
  /** Set only when this request gets the injected error. */
  status: number | undefined;
  retryAfter: string | undefined;
  /** Set only when this request gets the injected fault. */
  fault: Fault | undefined;
  text: TextMode;
  json: JsonMode;
  /** The usage detail to report (each 0 when not asked for). */
  detail: UsageDetail;
}

export function resolveKnobs(
  run: SimulatorKnobs,
  step: SimulatorKnobs | undefined,
  request: SimulatorKnobs,
  inject: boolean | undefined,
  maxDelayMs: number,
): ResolvedKnobs {
  const pick = <K extends keyof SimulatorKnobs>(k: K): SimulatorKnobs[K] => request[k] ?? step?.[k] ?? run[k];
  const delay = (v: number | undefined) => Math.min(Math.max(0, v ?? 0), maxDelayMs);
  let status = pick("status");
  if (status === 200) status = undefined;
  let fault = pick("fault");
  if (inject === true && status === undefined && fault === undefined) status = 503;
  if (inject === false) {
    status = undefined;
    fault = undefined;
  }
  return {
    latencyMs: delay(pick("latencyMs")),
    ttftMs: delay(pick("ttftMs")),
    interTokenMs: delay(pick("interTokenMs")),
    outputTokens: pick("outputTokens"),
    status,
    retryAfter: pick("retryAfter"),
    fault,
    text: pick("text") ?? "lorem",
    json: pick("json") ?? "valid",
    detail: {
      cachedTokens: pick("cachedTokens") ?? 0,
      cacheWriteTokens: pick("cacheWriteTokens") ?? 0,
      reasoningTokens: pick("reasoningTokens") ?? 0,
    },
  };
}

/**
 * How many requests each `x-sim-fail-key` has seen, so the first n fail and later ones
 * succeed. Bounded: past `max` keys the oldest is forgotten.
 */
export class FailCounters {
  readonly #seen = new Map<string, number>();
  constructor(private readonly max: number) {}

  /** Counts this request and says whether it is one of the first `times` for `key`. */
  next(key: string, times: number): boolean {
    const seen = this.#seen.get(key) ?? 0;
    if (seen >= times) return false;
    if (!this.#seen.has(key) && this.#seen.size >= this.max) {
      const oldest = this.#seen.keys().next();
      if (!oldest.done) this.#seen.delete(oldest.value);
    }
    this.#seen.set(key, seen + 1);
    return true;
  }

  clear(): void {
    this.#seen.clear();
  }
}
