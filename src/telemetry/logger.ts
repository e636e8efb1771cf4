/**
 * JSON-lines logging through winston, kept cheap: one custom format builds the whole line in one
 * pass (keys sorted, as winston's json format sorts them; undefined fields left out; bigints as
 * strings; `time` in ISO 8601; secret and prompt field names masked), one transport writes it to
 * stdout. The caller's fields go to winston by reference, in the one-argument log(info) form that
 * winston neither copies nor scans for format tokens, and a line below the level is dropped
 * before anything is built. winston's stock chain (timestamp, then json; the format pipeline the
 * service once used) copies and re-walks the info object at every step: ~3.5% of the gateway's
 * CPU under load for the access line alone.
 */
import winston from "winston";
import { LineTransport, MESSAGE } from "./line-transport.js";
import { logLine, type LogRecord } from "./log-line.js";

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

const SEVERITY: Readonly<Record<LogLevel, number>> = { error: 0, warn: 1, info: 2, debug: 3 };

/** What the logger hands winston: the record of logLine, but for the time, stamped by the format. */
type LogInfo = Omit<LogRecord, "time">;

/** The current time in ISO 8601, formatted once per millisecond however many lines share it. */
let stampMs = -1;
let stamp = "";
function now(): string {
  const ms = Date.now();
  if (ms !== stampMs) {
    stampMs = ms;
    stamp = new Date(ms).toISOString();
  }
  return stamp;
}

/** The one format: the finished line into info[MESSAGE], where the transport takes it. */
const jsonLine = winston.format((info) => {
  // The info is what write() below handed to winston.log: a LogInfo plus winston's LEVEL symbol.
  const { level, message, fields, ids } = info as unknown as LogInfo;
  info[MESSAGE] = logLine({ level, message, fields, ids, time: now() });
  return info;
});

/**
 * JSON lines with time, level, message and the fields (keys sorted); with `context`, the request
 * id, trace id and span id of the call being served. Callers pass fields, never prompt text or secrets.
 */
export function createLogger(level: LogLevel | string, options: LoggerOptions = {}): Logger {
  const known: LogLevel = Object.hasOwn(SEVERITY, level) ? (level as LogLevel) : "info";
  const threshold = SEVERITY[known];
  const context = options.context;
  const silent = options.silent ?? false;
  const out = options.stream ?? process.stdout;
  const winstonLogger = winston.createLogger({
    levels: SEVERITY,
    level: known,
    silent,
    format: jsonLine(),
    transports: [new LineTransport({ out, buffered: !silent && (options.buffered ?? options.stream === undefined) })],
  });

  const write = (lineLevel: LogLevel, message: string, fields: LogFields | undefined): void => {
    if (silent || SEVERITY[lineLevel] > threshold) return;
    // The ids are read here, in the caller's async context, not later inside winston's streams.
    const info: LogInfo = { level: lineLevel, message, fields, ids: context?.() };
    winstonLogger.log(info);
  };

  return {
    level: known,
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
