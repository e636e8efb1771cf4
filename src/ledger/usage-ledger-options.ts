/**
 * The usage ledger's options, and their defaults: what the service (app.ts) and the tests may tune,
 * and `ledgerSettings()`, which fills in what was left out and clamps what is out of range.
 */
import { join } from "node:path";
import type { Kysely } from "kysely";
import type { DatabaseSchema } from "./schema.js";

export interface UsageLedgerOptions {
  db: Kysely<DatabaseSchema>;
  /** How long a record may wait before a write is started. Default 200 ms. */
  flushIntervalMs?: number;
  /** Rows per INSERT; reaching it starts a write at once. Default 256. */
  batchSize?: number;
  /** Records held in memory at most; beyond it new records are dropped (and reported). Default 100,000. */
  maxQueue?: number;
  /** First retry delay after a failed write; doubles per consecutive failure. Default 100 ms. */
  retryBaseMs?: number;
  /** Longest retry delay. Default 10 s. */
  retryMaxMs?: number;
  /** Failed writes and dropped records are reported here; the ledger itself never logs or throws. */
  onError?: (err: Error) => void;
  /**
   * Directory of the local spool (the service passes `<DATA_DIR>/spool`). Without it records
   * wait only in memory. One process per directory.
   */
  spoolDir?: string;
  /**
   * Records kept in memory while writes fail; past it the oldest are moved to the spool, down to
   * half of it. At most maxQueue - 1. Default 10,000.
   */
  spillAfter?: number;
  /**
   * Once writes have failed for this long (or one INSERT has been running this long), everything
   * queued is moved to the spool, so a crash during an outage loses little. Default 5 s.
   */
  spillAfterMs?: number;
  /** The spool's size cap on disk; records past it are dropped and reported. Default 1 GiB. */
  spoolMaxBytes?: number;
  /** How long close() waits for the database before spooling what is left. Default 5 s. */
  closeTimeoutMs?: number;
  /** Called with a count after records were moved to the spool (and fsync'd): worth a log line. */
  onSpill?: (records: number) => void;
  /** The clock behind spillAfterMs. Default Date.now. */
  now?: () => number;
  /**
   * With a spool: journal every record to disk before record() returns (write(2), no fsync), so a
   * crash of the process loses none. Default true.
   */
  journal?: boolean;
  /**
   * Where rows the database refuses for their content go (one JSON line each, with the SQLSTATE).
   * Default `<spoolDir>/dead-letter.jsonl` with a spool; without either, such rows are dropped and reported.
   */
  deadLetterPath?: string;
  /** Called after a replay of the spool wrote records, with how many and how many are still spooled. */
  onReplay?: (replayed: number, remaining: number) => void;
}

/** The options that stay optional once defaults are applied: leaving them out means "none". */
type Unset = "spoolDir" | "spoolMaxBytes" | "deadLetterPath";

/** The options with every default applied. */
export type LedgerSettings = Readonly<Required<Omit<UsageLedgerOptions, Unset>> & Pick<UsageLedgerOptions, Unset>>;

export function ledgerSettings(opts: UsageLedgerOptions): LedgerSettings {
  const maxQueue = Math.max(1, opts.maxQueue ?? 100_000);
  const deadLetterPath = opts.deadLetterPath ?? (opts.spoolDir === undefined ? undefined : join(opts.spoolDir, "dead-letter.jsonl"));
  return {
    db: opts.db,
    flushIntervalMs: opts.flushIntervalMs ?? 200,
    batchSize: Math.max(1, opts.batchSize ?? 256),
    maxQueue,
    retryBaseMs: opts.retryBaseMs ?? 100,
    retryMaxMs: opts.retryMaxMs ?? 10_000,
    onError: opts.onError ?? (() => undefined),
    spoolDir: opts.spoolDir,
    spillAfter: Math.max(0, Math.min(opts.spillAfter ?? 10_000, maxQueue - 1)),
    spillAfterMs: Math.max(0, opts.spillAfterMs ?? 5_000),
    spoolMaxBytes: opts.spoolMaxBytes,
    closeTimeoutMs: Math.max(0, opts.closeTimeoutMs ?? 5_000),
    onSpill: opts.onSpill ?? (() => undefined),
    now: opts.now ?? Date.now,
    journal: opts.journal ?? true,
    deadLetterPath,
    onReplay: opts.onReplay ?? (() => undefined),
  };
}
