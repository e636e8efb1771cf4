/** What the usage spool reports to its onError: records it gave up on, and lines replay could not read. */

/** Records the spool gave up on. */
export class UsageSpoolDropError extends Error {
  override readonly name = "UsageSpoolDropError";
  readonly dropped: number;
  readonly why: string;

  constructor(dropped: number, why: string, options?: ErrorOptions) {
    super(`usage spool dropped ${dropped} record(s): ${why}`, options);
    this.dropped = dropped;
    this.why = why;
  }
}

/** A spooled line that replay could not read (usually the last line, torn by a crash mid-write). */
export class UsageSpoolCorruptLineError extends Error {
  override readonly name = "UsageSpoolCorruptLineError";
  readonly file: string;
  readonly line: number;
  readonly bytes: number;

  constructor(file: string, line: number, bytes: number, why: string, options?: ErrorOptions) {
    super(`usage spool: skipped line ${line} of ${file} (${bytes} bytes): ${why}`, options);
    this.file = file;
    this.line = line;
    this.bytes = bytes;
  }
}
