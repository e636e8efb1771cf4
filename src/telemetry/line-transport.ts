/**
 * A winston transport that writes the line the format already built (info[MESSAGE]) and nothing
 * else: no format of its own (winston would copy the info object for it), no `logged` event per
 * line (winston's own transports schedule one with setImmediate), and on stdout the lines of one
 * event-loop turn go out in one write.
 */
import winston from "winston";

/** Where winston's formats leave the finished line (triple-beam's MESSAGE). */
export const MESSAGE: unique symbol = Symbol.for("message") as typeof MESSAGE;

/**
 * winston-transport's base class. winston exports it as `Transport` at run time; its type file
 * names it `transport`, so the value is reached through a cast.
 */
const TransportStream = (winston as unknown as { Transport: new () => winston.transport }).Transport;

const FLUSH_AT_CHARS = 64 * 1024;

/** The flush of every buffered transport, run on process exit (one listener for all of them). */
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

export interface LineTransportOptions {
  out: NodeJS.WritableStream;
  /**
   * Lines written in one turn of the event loop go out in one write at its end (one system call
   * rather than one per line: the access line alone was ~7% of a unary call's CPU written one by
   * one). Pending lines are written at once when they pass 64 KiB and, synchronously, on process
   * exit.
   */
  buffered: boolean;
}

export class LineTransport extends TransportStream {
  private readonly emitLine: (line: string) => void;

  constructor(options: LineTransportOptions) {
    super();
    const out = options.out;
    this.emitLine = options.buffered ? lineBuffer(out) : (line) => void out.write(line);
  }

  override log(info: winston.Logform.TransformableInfo, next: () => void): void {
    this.emitLine(`${info[MESSAGE] as string}\n`);
    next();
  }
}
