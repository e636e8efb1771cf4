import winston from "winston";

export type Logger = winston.Logger;

/** Fields a log line may carry about the call it is written in. */
export interface LogContext {
  requestId?: string;
  traceId?: string;
  spanId?: string;
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
}

/**
 * Field names that could only hold a secret or prompt/completion text. Callers never pass them;
 * this is the backstop should one slip in.
 */
const REDACTED = new Set(["authorization", "apiKey", "api_key", "secret", "password", "prompt", "messages", "system", "completion", "content"]);

const redact = winston.format((info) => {
  for (const key of Object.keys(info)) if (REDACTED.has(key)) info[key] = "[redacted]";
  return info;
});

const time = winston.format((info) => {
  info["time"] = new Date().toISOString();
  return info;
});

/**
 * JSON lines: time, level, message, then the fields; with `context`, the request id, trace id
 * and span id of the call being served. Callers pass fields, never prompt text or secrets.
 */
export function createLogger(level: string, options: LoggerOptions = {}): Logger {
  const context = options.context;
  const withContext = winston.format((info) => {
    if (context) {
      const fields = context();
      for (const [key, value] of Object.entries(fields)) if (info[key] === undefined && value !== undefined) info[key] = value;
    }
    return info;
  });
  return winston.createLogger({
    level,
    silent: options.silent ?? false,
    format: winston.format.combine(time(), withContext(), redact(), winston.format.json()),
    transports: [options.stream ? new winston.transports.Stream({ stream: options.stream }) : new winston.transports.Console()],
  });
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
