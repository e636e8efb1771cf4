/**
 * Writes one batch of ledger rows to `generations`. A batch goes in as one INSERT; when the
 * database rejects a row itself (bad data), the batch is written again one row at a time, so the
 * good rows are written and one bad record cannot block the ledger, and each rejected row goes to
 * the dead-letter file with the database's reason. What to do when the database is unwell (retry,
 * back off, spool) is the ledger's; this only says which rows were not written.
 */
import type { Kysely } from "kysely";
import { rejectionOf, type DeadLetterFile } from "./dead-letter.js";
import { toUsageRecord } from "./generation-row.js";
import { insertGenerations } from "./generations-insert.js";
import type { DatabaseSchema, NewGenerationRow } from "./schema.js";
import { UsageRecordDeadLetteredError, UsageRecordsDroppedError } from "./usage-ledger-errors.js";

export interface GenerationWriterOptions {
  db: Kysely<DatabaseSchema>;
  /** Where refused rows go; without it they are dropped and reported. */
  deadLetter: DeadLetterFile | undefined;
  /** The clock behind writeStartedAt. */
  now: () => number;
  /** After every successful INSERT: the database is answering again. */
  onInserted: () => void;
  /** Dropped and dead-lettered rows, and a dead-letter file that cannot be written. Must not throw. */
  report: (err: Error) => void;
}

/**
 * SQLSTATE classes that mean "this row is wrong", not "the database is unwell": 22 data exception,
 * 23 integrity, 54 program limit (a value too large for an index row, say).
 */
function isRowError(err: unknown): boolean {
  if (typeof err !== "object" || err === null || !("code" in err)) return false;
  const code = (err as { code: unknown }).code;
  return typeof code === "string" && (code.startsWith("22") || code.startsWith("23") || code.startsWith("54"));
}

export class GenerationWriter {
  readonly #db: Kysely<DatabaseSchema>;
  readonly #deadLetter: DeadLetterFile | undefined;
  readonly #now: () => number;
  readonly #onInserted: () => void;
  readonly #report: (err: Error) => void;
  /** When the INSERT now running began (by `now`). */
  #writeStartedAt: number | undefined;
  #written = 0;
  #dropped = 0;

  constructor(opts: GenerationWriterOptions) {
    this.#db = opts.db;
    this.#deadLetter = opts.deadLetter;
    this.#now = opts.now;
    this.#onInserted = opts.onInserted;
    this.#report = opts.report;
  }

  /** When the INSERT now running began (by `now`), or undefined when none is running. */
  get writeStartedAt(): number | undefined {
    return this.#writeStartedAt;
  }

  /** Rows sent to the database in successful INSERTs (duplicates of a request id included). */
  get written(): number {
    return this.#written;
  }

  /** Refused rows given up on because there is no dead-letter file. */
  get dropped(): number {
    return this.#dropped;
  }

  /**
   * Writes one batch. When the database fails, `unwritten` gets the index of the first row not
   * written and the error is rethrown. `kept` gets the indices of rejected rows that could not be
   * dead-lettered either (reported).
   */
  async write(rows: readonly NewGenerationRow[], unwritten: (from: number) => void, kept: number[]): Promise<void> {
    if (rows.length === 0) return;
    try {
      await this.#insert(rows);
      return;
    } catch (err) {
      if (!isRowError(err)) {
        unwritten(0);
        throw err;
      }
    }
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      try {
        await this.#insert([row]);
      } catch (err) {
        if (!isRowError(err)) {
          unwritten(i);
          throw err;
        }
        if (!(await this.#deadLetterRow(row, err))) kept.push(i);
      }
    }
  }

  /** Keeps a row the database refused in the dead-letter file; false when it could not (reported). */
  async #deadLetterRow(row: NewGenerationRow, refusal: unknown): Promise<boolean> {
    const rejection = rejectionOf(refusal);
    const why = `the database rejected request ${row.request_id} (SQLSTATE ${rejection.sqlstate ?? "none"})`;
    if (this.#deadLetter === undefined) {
      this.#dropped++;
      this.#report(new UsageRecordsDroppedError(1, why, { cause: refusal }));
      return true;
    }
    try {
      await this.#deadLetter.write(toUsageRecord(row), rejection);
    } catch (err) {
      this.#report(new Error(`usage ledger: ${why}, and the dead-letter file ${this.#deadLetter.path} cannot be written`, { cause: err }));
      return false;
    }
    this.#report(new UsageRecordDeadLetteredError(row.request_id, this.#deadLetter.path, rejection.sqlstate, { cause: refusal }));
    return true;
  }

  async #insert(rows: readonly NewGenerationRow[]): Promise<void> {
    this.#writeStartedAt = this.#now();
    try {
      await insertGenerations(this.#db, rows);
    } finally {
      this.#writeStartedAt = undefined;
    }
    this.#written += rows.length;
    this.#onInserted();
  }
}
