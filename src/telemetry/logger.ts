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
