import winston from "winston";

export type Logger = winston.Logger;

/** JSON lines to stdout. Callers pass fields, never prompt text or secrets. */
export function createLogger(level: string, options: { silent?: boolean } = {}): Logger {
  return winston.createLogger({
    level,
    silent: options.silent ?? false,
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    transports: [new winston.transports.Console()],
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
