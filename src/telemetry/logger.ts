/**
 * JSON-lines logging. A small writer rather than winston: the access line is written once per
 * call, and winston's format pipeline (a stream per logger, a transform per format, a copy of
 * the info object at each step) was ~3.5% of the gateway's CPU under load for that line alone.
 * The lines are the same: keys sorted (as winston's json format sorted them), undefined fields
 * left out, bigints as strings, `time` in ISO 8601.
 */

export type LogLevel = "error" | "warn" | "info" | "debug";

/** Fields a log line may carry about the call it is written in. */
export interface LogContext {
  requestId?: string;
  /** The caller's x-request-id, a correlation id. */
  clientRequestId?: string;
  traceId?: string;
  spanId?: string;
}

export type LogFields = Record<string, unknown>;

export interface Logger {
  /** The level below which lines are dropped. */
  readonly level: LogLevel;
  /** Whether a line at this level would be written: check it before building costly fields. */
  isLevelEnabled(level: LogLevel): boolean;
  error(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  debug(message: string, fields?: LogFields): void;
}

export interface LoggerOptions {
  silent?: boolean;
  /** Where the JSON lines go; default stdout. Tests hand in a stream to read them back. */
  stream?: NodeJS.WritableStream;
  /**
   * The active call's request id, trace id and span id (Tracing.logFields), added to every line
   * that does not set them itself.
   */
  context?: () => LogContext;
  /**
   * Lines written in one turn of the event loop go out in one write at its end (one system call
   * rather than one per line: the access line alone was ~7% of a unary call's CPU written one by
   * one). Pending lines are written at once when they pass 64 KiB and, synchronously, on process
   * exit. Default: true for stdout, false for a given `stream` (tests read lines back as written).
   */
  buffered?: boolean;
}

const FLUSH_AT_CHARS = 64 * 1024;

/** The flush of every buffered logger, run on process exit (one listener for all of them). */
const flushOnExit = new Set<() => void>();
let exitHooked = false;

/** Lines held until the end of the current event-loop turn, then written together. */
function lineBuffer(out: NodeJS.WritableStream): (line: string) => void {
  let pending = "";
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    if (pending.length === 0) return;
    const text = pending;
    pending = "";
    out.write(text);
  };
  // stdout to a file, a pipe or a terminal is written synchronously on Linux, so this reaches it
  // even when the process exits right after logging (process.exit, an uncaught exception).
  flushOnExit.add(flush);
  if (!exitHooked) {
    exitHooked = true;
    process.on("exit", () => {
      for (const f of flushOnExit) f();
    });
  }
  return (line) => {
    pending += line;
    if (pending.length >= FLUSH_AT_CHARS) flush();
    else if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
}

const SEVERITY: Readonly<Record<LogLevel, number>> = { error: 0, warn: 1, info: 2, debug: 3 };

/**
 * Field names that could only hold a secret or prompt/completion text. Callers never pass them;
 * this is the backstop should one slip in.
 */
const REDACTED = new Set(["authorization", "apiKey", "api_key", "secret", "password", "prompt", "messages", "system", "completion", "content"]);

/** Fields the line itself owns: a caller's `level` is ignored, its `time` replaced. */
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

/** Whether JSON.stringify writes the value as it is (no bigint to convert, no keys to sort). */
function isPlain(value: unknown): boolean {
  const type = typeof value;
  return value === null || type === "string" || type === "number" || type === "boolean";
}

/** One line, or a line that says its fields could not be written (a circular structure, say). */
function serialize(line: Record<string, unknown>): string {
  try {
    // Flat lines (the access line, most others): keys sorted once, no replacer called per value.
    const keys = Object.keys(line).sort();
    const sorted: Record<string, unknown> = {};
    let flat = true;
    for (const key of keys) {
      const value = line[key];
      if (!isPlain(value)) {
        flat = false;
        break;
      }
      sorted[key] = value;
    }
    if (flat) return JSON.stringify(sorted);
    return JSON.stringify(line, sortedReplacer);
  } catch {
    return JSON.stringify({ level: line["level"], message: line["message"], time: line["time"], logError: "fields could not be serialized" });
  }
}

/**
 * JSON lines with time, level, message and the fields (keys sorted); with `context`, the request
 * id, trace id and span id of the call being served. Callers pass fields, never prompt text or secrets.
 */
export function createLogger(level: LogLevel | string, options: LoggerOptions = {}): Logger {
  const threshold = SEVERITY[level as LogLevel] ?? SEVERITY.info;
  const context = options.context;
  const silent = options.silent ?? false;
  const out = options.stream ?? process.stdout;
  const emit = !silent && (options.buffered ?? options.stream === undefined) ? lineBuffer(out) : (line: string) => void out.write(line);

  const write = (lineLevel: LogLevel, message: string, fields: LogFields | undefined): void => {
    if (silent || SEVERITY[lineLevel] > threshold) return;
    const line: Record<string, unknown> = {};
    let text = message;
    if (fields !== undefined && fields !== null) {
      for (const key in fields) {
        if (!Object.prototype.hasOwnProperty.call(fields, key)) continue;
        const value = fields[key];
        if (value === undefined) continue;
        if (OWN.has(key)) {
          // As winston did: a `message` field is appended to the message.
          if (key === "message" && typeof value === "string" && value.length > 0) text = text.length > 0 ? `${text} ${value}` : value;
          continue;
        }
        line[key] = REDACTED.has(key) ? "[redacted]" : value;
      }
    }
    if (context) {
      const ids = context();
      for (const key in ids) {
        const value = ids[key as keyof LogContext];
        if (value !== undefined && line[key] === undefined) line[key] = value;
      }
    }
    line["level"] = lineLevel;
    line["message"] = text;
    line["time"] = new Date().toISOString();
    emit(`${serialize(line)}\n`);
  };

  return {
    level: (Object.hasOwn(SEVERITY, level) ? level : "info") as LogLevel,
    isLevelEnabled: (lineLevel) => !silent && SEVERITY[lineLevel] <= threshold,
    error: (message, fields) => write("error", message, fields),
    warn: (message, fields) => write("warn", message, fields),
    info: (message, fields) => write("info", message, fields),
    debug: (message, fields) => write("debug", message, fields),
  };
}

/** A warn() that logs a given message at most once per interval, counting what it held back. */
export function throttledWarn(logger: Logger, intervalMs = 10_000): (message: string, fields?: Record<string, unknown>) => void {
  const last = new Map<string, { at: number; suppressed: number }>();
  return (message, fields = {}) => {
    const now = Date.now();
    const seen = last.get(message);
    if (seen && now - seen.at < intervalMs) {
      seen.suppressed++;
      return;
    }
    logger.warn(message, { ...fields, ...(seen?.suppressed ? { suppressed: seen.suppressed } : {}) });
    last.set(message, { at: now, suppressed: 0 });
  };
}
