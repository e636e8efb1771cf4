/**
 * The text of one JSON log line, built in one pass: keys sorted (at every depth, as winston's json
 * format sorts them), undefined fields left out, bigints as strings, and fields whose name could
 * only hold a secret or prompt/completion text masked.
 */
import type { LogContext } from "./logger.js";

/**
 * Field names that could only hold a secret or prompt/completion text. Callers never pass them;
 * this is the backstop should one slip in.
 */
const REDACTED = new Set(["authorization", "apiKey", "api_key", "secret", "password", "prompt", "messages", "system", "completion", "content"]);

/** Fields the line itself owns: a caller's `level` is ignored, its `time` replaced, its `message` appended. */
const OWN = new Set(["level", "message", "time"]);

/** JSON.stringify replacer: objects with their keys sorted (at every depth), bigints as strings. */
function sortedReplacer(this: unknown, _key: string, value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
  const keys = Object.keys(value).sort();
  const out: Record<string, unknown> = {};
  for (const key of keys) out[key] = (value as Record<string, unknown>)[key];
  return out;
}

export interface LogRecord {
  level: string;
  message: string;
  /** The caller's fields, read in place (never copied or changed). */
  fields?: Readonly<Record<string, unknown>> | undefined;
  /** The call's ids (request, trace, span), written where `fields` does not set them. */
  ids?: Readonly<LogContext> | undefined;
  /** ISO 8601. */
  time: string;
}

/**
 * The line (without its newline), or a line that says its fields could not be written (a
 * circular structure, say). A `message` field is appended to the message, as winston's log() does.
 */
export function logLine(record: LogRecord): string {
  const { fields, ids } = record;
  let message = record.message;
  const keys: string[] = ["level", "message", "time"];
  if (fields !== undefined && fields !== null) {
    for (const key in fields) {
      if (!Object.prototype.hasOwnProperty.call(fields, key)) continue;
      const value = fields[key];
      if (value === undefined) continue;
      if (OWN.has(key)) {
        if (key === "message" && typeof value === "string" && value.length > 0) message = message.length > 0 ? `${message} ${value}` : value;
        continue;
      }
      keys.push(key);
    }
  }
  if (ids !== undefined) {
    for (const key in ids) {
      if (ids[key as keyof LogContext] !== undefined && (fields === undefined || fields === null || !Object.hasOwn(fields, key) || fields[key] === undefined)) keys.push(key);
    }
  }
  keys.sort();
  const valueOf = (key: string): unknown => {
    if (key === "level") return record.level;
    if (key === "message") return message;
    if (key === "time") return record.time;
    const value = fields?.[key];
    if (value === undefined) return ids?.[key as keyof LogContext];
    return REDACTED.has(key) ? "[redacted]" : value;
  };
  // Flat lines (the access line, most others) are written key by key: no object built, no
  // replacer called per value. A line with an object, an array or a bigint goes to JSON.stringify.
  let text = "{";
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    const json = plainJson(valueOf(key));
    if (json === undefined) return nestedLine(keys, valueOf, record);
    text += `${i === 0 ? "" : ","}${quotedKey(key)}${json}`;
  }
  return `${text}}`;
}

/** `"key":`, remembered for the few hundred keys a service logs. */
const quotedKeys = new Map<string, string>();
function quotedKey(key: string): string {
  let quoted = quotedKeys.get(key);
  if (quoted === undefined) {
    quoted = `${JSON.stringify(key)}:`;
    if (quotedKeys.size < 1024) quotedKeys.set(key, quoted);
  }
  return quoted;
}

/** The JSON of a string, number, boolean or null as JSON.stringify writes it; undefined for anything else. */
function plainJson(value: unknown): string | undefined {
  switch (typeof value) {
    case "string":
      return JSON.stringify(value);
    case "number":
      return Number.isFinite(value) ? String(value) : "null";
    case "boolean":
      return value ? "true" : "false";
    default:
      return value === null ? "null" : undefined;
  }
}

/** A line with nested values, bigints or anything else JSON.stringify must walk. */
function nestedLine(keys: readonly string[], valueOf: (key: string) => unknown, record: LogRecord): string {
  const line: Record<string, unknown> = {};
  for (const key of keys) line[key] = valueOf(key);
  try {
    return JSON.stringify(line, sortedReplacer);
  } catch {
    return JSON.stringify({ level: record.level, logError: "fields could not be serialized", message: line["message"], time: record.time });
  }
}
