/**
 * The dead-letter file: usage records the database refused for their content (a constraint, an
 * encoding error: SQLSTATE classes 22, 23 and 54), kept instead of discarded, one JSON line each:
 *
 *   {"at":"<ISO time>","sqlstate":"22P05","message":"<the database's message>","record":{<the spool's record form>}}
 *
 * An operator can fix a line and insert it again; nothing reads the file back automatically.
 * The message is the database's own short one (it names types, encodings and constraints). The
 * error's detail, which can quote the row's values, is left out. A record holds no prompt text.
 * Each line is fsync'd before write() resolves, like the spool.
 */
import { open } from "node:fs/promises";
import type { UsageRecord } from "../core/types.js";
import { encodeSpooledRecord } from "./spooled-record.js";

/** Why the database refused a row. */
export interface Rejection {
  /** SQLSTATE, when the error carried one. */
  sqlstate: string | null;
  /** The database's message, at most 300 characters. */
  message: string;
  /** The constraint, table or column named by the error, when it names one. */
  constraint?: string;
  column?: string;
}

const MAX_MESSAGE = 300;

/** The parts of a driver error (node-postgres or PGlite) fit for the file. */
export function rejectionOf(err: unknown): Rejection {
  const e = (typeof err === "object" && err !== null ? err : {}) as Record<string, unknown>;
  const text = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);
  const message = text(e["message"]) ?? String(err);
  const constraint = text(e["constraint"]);
  const column = text(e["column"]);
  return {
    sqlstate: text(e["code"]) ?? null,
    message: message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE)}…` : message,
    ...(constraint === undefined ? {} : { constraint }),
    ...(column === undefined ? {} : { column }),
  };
}

export class DeadLetterFile {
  readonly path: string;
  #written = 0;
  /** Writes run one at a time, so lines never interleave. */
  #tail: Promise<void> = Promise.resolve();

  constructor(path: string) {
    this.path = path;
  }

  /** Records written to the file since start. */
  get written(): number {
    return this.#written;
  }

  /** Appends one line and resolves once it is fsync'd; rejects when the disk write fails. */
  write(record: UsageRecord, rejection: Rejection): Promise<void> {
    const line = `${JSON.stringify({
      at: new Date().toISOString(),
      ...rejection,
      record: JSON.parse(encodeSpooledRecord(record)) as unknown,
    })}\n`;
    const run = this.#tail.then(async () => {
      const fh = await open(this.path, "a");
      try {
        await fh.writeFile(line, "utf8");
        await fh.datasync();
      } finally {
        await fh.close();
      }
      this.#written++;
    });
    this.#tail = run.catch(() => undefined);
    return run;
  }
}
