/**
 * The usage writer: `record()` queues in memory and returns at once; a timer and a size
 * threshold write the queue in batches (generation-writer.ts), one INSERT of per-column arrays each
 * (generations-insert.ts), one row per request id, which the server generates for every call (ON CONFLICT
 * (request_id) DO NOTHING: writing a record twice, as a replay may, never counts it twice; no caller can
 * choose the id, so no call can hide behind another's row).
 * A failed write puts its records back at the front of the queue and is retried with backoff.
 *
 * With `spoolDir`, an outage longer than memory holds loses nothing either: while writes fail,
 * the oldest records move past `spillAfter` (or all of them after `spillAfterMs`) to an
 * append-only spool on local disk (usage-spool.ts), which is replayed in the background once
 * writes succeed again and on `start()`; `close()` spools whatever the database did not take.
 * Without it, records wait in memory up to `maxQueue`.
 *
 * With a spool, `start()` also opens the journal (usage-journal.ts): `record()` writes each record
 * through to the page cache before it returns, so an acknowledged call's record survives kill -9;
 * the next start replays what the journal holds. And a row the database refuses for its content
 * goes to the dead-letter file (dead-letter.ts) beside the spool, not to /dev/null.
 */
import { join } from "node:path";
import type { Kysely } from "kysely";
import type { UsageRecord, UsageSink } from "../core/types.js";
import { DeadLetterFile } from "./dead-letter.js";
import { toGenerationRow, toUsageRecord } from "./generation-row.js";
import { GenerationWriter } from "./generation-writer.js";
import type { DatabaseSchema, NewGenerationRow } from "./schema.js";
import { UsageRecordsDroppedError } from "./usage-ledger-errors.js";
import { UsageJournal } from "./usage-journal.js";
import { UsageSpool } from "./usage-spool.js";
import { UsageSpoolDropError } from "./usage-spool-errors.js";

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

interface Queued {
  /** Enqueue order; `flush()` writes everything up to the sequence number current when it was called. */
  seq: number;
  row: NewGenerationRow;
  /** The journal segment holding the record until it is released; 0 when not journaled (or released). */
  journal: number;
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

export class UsageLedger implements UsageSink {
  readonly #flushIntervalMs: number;
  readonly #batchSize: number;
  readonly #maxQueue: number;
  readonly #retryBaseMs: number;
  readonly #retryMaxMs: number;
  readonly #onError: (err: Error) => void;
  readonly #spoolDir: string | undefined;
  readonly #spillAfter: number;
  readonly #spillAfterMs: number;
  readonly #spoolMaxBytes: number | undefined;
  readonly #closeTimeoutMs: number;
  readonly #onSpill: (records: number) => void;
  readonly #now: () => number;
  readonly #journalOn: boolean;
  readonly #deadLetter: DeadLetterFile | undefined;
  readonly #writer: GenerationWriter;
  readonly #onReplay: (replayed: number, remaining: number) => void;

  #queue: Queued[] = [];
  #journal: UsageJournal | undefined;
  #seq = 0;
  #timer: NodeJS.Timeout | undefined;
  /** Every write runs on this chain, one at a time, so concurrent flushes never write a row twice. */
  #tail: Promise<void> = Promise.resolve();
  /** A background write is queued or running. */
  #backgroundBusy = false;
  /** Consecutive failed writes; non-zero means the ledger is backing off. */
  #failures = 0;
  /** When the current run of failed writes began (by `now`); undefined while writes succeed. */
  #failingSince: number | undefined;
  /** The queued batch being written; close() spools it too when the write outlasts its timeout. */
  #inFlight: Queued[] = [];
  #droppedUnreported = 0;
  #dropped = 0;
  #closed = false;
  #closing: Promise<void> | undefined;

  #spool: UsageSpool | undefined;
  #spoolOpening: Promise<UsageSpool> | undefined;
  /** Records on their way from the queue to the spool; settles (never rejects) when they are on disk or back in the queue. */
  #spilling: Promise<void> | undefined;
  /** After the spool failed, no spill before this time (by `now`). */
  #spillPausedUntil = 0;
  #replaying: Promise<void> | undefined;
  readonly #stopReplay = new AbortController();

  constructor(opts: UsageLedgerOptions) {
    this.#flushIntervalMs = opts.flushIntervalMs ?? 200;
    this.#batchSize = Math.max(1, opts.batchSize ?? 256);
    this.#maxQueue = Math.max(1, opts.maxQueue ?? 100_000);
    this.#retryBaseMs = opts.retryBaseMs ?? 100;
    this.#retryMaxMs = opts.retryMaxMs ?? 10_000;
    this.#onError = opts.onError ?? (() => undefined);
    this.#spoolDir = opts.spoolDir;
    this.#spillAfter = Math.max(0, Math.min(opts.spillAfter ?? 10_000, this.#maxQueue - 1));
    this.#spillAfterMs = Math.max(0, opts.spillAfterMs ?? 5_000);
    this.#spoolMaxBytes = opts.spoolMaxBytes;
    this.#closeTimeoutMs = Math.max(0, opts.closeTimeoutMs ?? 5_000);
    this.#onSpill = opts.onSpill ?? (() => undefined);
    this.#now = opts.now ?? Date.now;
    this.#journalOn = opts.journal ?? true;
    const deadLetterPath = opts.deadLetterPath ?? (opts.spoolDir === undefined ? undefined : join(opts.spoolDir, "dead-letter.jsonl"));
    this.#deadLetter = deadLetterPath === undefined ? undefined : new DeadLetterFile(deadLetterPath);
    this.#writer = new GenerationWriter({
      db: opts.db,
      deadLetter: this.#deadLetter,
      now: this.#now,
      onInserted: () => {
        this.#failures = 0;
        this.#failingSince = undefined;
      },
      report: (err) => this.#report(err),
    });
    this.#onReplay = opts.onReplay ?? (() => undefined);
  }

  /** Records waiting in memory to be written. */
  get pending(): number {
    return this.#queue.length;
  }

  /** Records waiting in the spool on disk (0 without a spool, or before it is opened). */
  get spooled(): number {
    return this.#spool?.records ?? 0;
  }

  /** Records given up on since start (queue full, spool full, closed, or rejected by the database). */
  get dropped(): number {
    return this.#dropped + this.#writer.dropped;
  }

  /** Records the database refused for their content, kept in the dead-letter file. */
  get deadLettered(): number {
    return this.#deadLetter?.written ?? 0;
  }

  /** Records journaled and not yet in the database, the spool or the dead-letter file. */
  get journaled(): number {
    return this.#journal?.outstanding ?? 0;
  }

  /** Rows sent to the database in successful INSERTs (duplicates of a request id included). */
  get written(): number {
    return this.#writer.written;
  }

  /**
   * Opens the spool, takes in the journal an earlier process left, opens this process's journal
   * and starts replaying, in the background, whatever the spool holds. Resolves with the number
   * of records waiting to be replayed. Does nothing without `spoolDir`. Rejects when the spool
   * cannot be opened (another live process holds it, say); the ledger then works as without one
   * (and without a journal) until a spill opens it.
   */
  async start(): Promise<{ spooled: number }> {
    if (this.#spoolDir === undefined || this.#closed) return { spooled: 0 };
    const spool = await this.#openSpool();
    if (this.#closed) return { spooled: spool.records };
    if (this.#journalOn && this.#journal === undefined) {
      const leftovers = await UsageJournal.leftovers(spool.dir);
      if (this.#closed) return { spooled: spool.records };
      await spool.adopt(leftovers);
      if (this.#closed) return { spooled: spool.records };
      this.#journal = new UsageJournal({ dir: spool.dir, onError: (err) => this.#report(err) });
    }
    this.#startReplay();
    return { spooled: spool.records };
  }

  record(record: UsageRecord): void {
    try {
      if (this.#closed) {
        this.#report(new UsageRecordsDroppedError(1, "the ledger is closed"));
        this.#dropped++;
        return;
      }
      if (this.#queue.length >= this.#maxQueue) this.#maybeSpill();
      if (this.#queue.length >= this.#maxQueue) {
        this.#dropped++;
        this.#droppedUnreported++;
        this.#schedule(this.#flushIntervalMs);
        return;
      }
      const row = toGenerationRow(record);
      // Through to the page cache before the call can answer: from here a crash cannot lose it.
      const journal = this.#journal === undefined ? 0 : this.#journal.append(record);
      this.#queue.push({ seq: ++this.#seq, row, journal });
      if (this.#queue.length >= this.#batchSize && this.#failures === 0) this.#startBackgroundWrite();
      else this.#schedule(this.#flushIntervalMs);
      this.#maybeSpill();
    } catch (err) {
      // A record that cannot even be turned into a row (e.g. a missing field) must not reach the queue.
      this.#dropped++;
      this.#report(new UsageRecordsDroppedError(1, "the record is malformed", { cause: err }));
    }
  }

  /**
   * Writes everything recorded so far, now, even while backing off: the queue, then the spool.
   * Rejects when a write fails; the records stay queued (or spooled) and the background retry carries on.
   */
  async flush(): Promise<void> {
    const target = this.#seq;
    try {
      await this.#flushQueue(target);
      if (this.#spoolDir !== undefined && !this.#closed) await this.#replay();
    } catch (err) {
      this.#noteFailure();
      this.#schedule(this.#backoffMs());
      this.#maybeSpill();
      throw err;
    } finally {
      this.#reportDrops();
    }
  }

  /**
   * Stops the timer and writes what is queued, waiting at most `closeTimeoutMs`. With a spool,
   * whatever the database did not take by then is spooled (to be replayed by the next start) and
   * close() resolves; without one it rejects and the records are lost with the process.
   * Records arriving afterwards are dropped and reported. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#stopReplay.abort();
    const deadline = Date.now() + this.#closeTimeoutMs;
    let failure: unknown;
    try {
      await withTimeout(this.#flushQueue(this.#seq), deadline, "the usage ledger could not write its queue before closeTimeoutMs");
    } catch (err) {
      failure = err;
    } finally {
      this.#reportDrops();
    }
    if (this.#spoolDir === undefined) {
      if (failure !== undefined) throw failure;
      return;
    }

    let spoolFailure: unknown;
    await this.#spilling;
    // A write still running may yet succeed: spooling its records too costs a duplicate INSERT, never a double count.
    const left = [...(failure === undefined ? [] : this.#inFlight), ...this.#queue.splice(0)];
    if (left.length > 0) {
      try {
        const spool = await this.#openSpool();
        const { spooled } = await spool.append(left.map((q) => toUsageRecord(q.row)));
        this.#release(left);
        if (spooled > 0) this.#notifySpill(spooled);
      } catch (err) {
        spoolFailure = err;
        // The journaled ones stay in the journal, for the next start to replay.
        const lost = left.filter((q) => q.journal === 0).length;
        if (lost > 0) {
          this.#dropped += lost;
          this.#report(
            new UsageRecordsDroppedError(lost, "the database is unreachable and the spool cannot be written", { cause: err }),
          );
        }
      }
    }
    // The replay was told to stop; its current batch may be waiting on the database.
    if (this.#replaying !== undefined) await withTimeout(this.#replaying, deadline, "").catch(() => undefined);
    // Before the lock goes: what it still holds is the next start's to replay.
    this.#journal?.close();
    // An open still under way (start() not awaited) would otherwise keep the lock.
    const spool = this.#spool ?? (await this.#spoolOpening?.catch(() => undefined));
    await spool?.close();
    if (spoolFailure !== undefined) throw spoolFailure;
  }

  /** Writes the queue up to `target`, including records a spill in progress may put back. */
  async #flushQueue(target: number): Promise<void> {
    await this.#serialize(() => this.#drain(target));
    if (this.#spilling !== undefined) {
      await this.#spilling;
      await this.#serialize(() => this.#drain(target));
    }
  }

  #serialize(job: () => Promise<void>): Promise<void> {
    const run = this.#tail.then(job);
    this.#tail = run.catch(() => undefined);
    return run;
  }

  #schedule(delayMs: number): void {
    if (this.#timer !== undefined || this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#startBackgroundWrite();
    }, delayMs);
    this.#timer.unref();
  }

  #startBackgroundWrite(): void {
    if (this.#backgroundBusy || this.#closed) return;
    this.#backgroundBusy = true;
    const target = this.#seq;
    void this.#serialize(() => this.#drain(target)).then(
      () => {
        this.#backgroundBusy = false;
        this.#reportDrops();
        if (this.#queue.length >= this.#batchSize) this.#startBackgroundWrite();
        else if (this.#queue.length > 0) this.#schedule(this.#flushIntervalMs);
        // After an outage this is also the probe: with everything spilled, the replay is the write that tells.
        this.#startReplay();
      },
      (err: unknown) => {
        this.#backgroundBusy = false;
        this.#reportDrops();
        this.#backgroundFailed(err);
      },
    );
  }

  #backgroundFailed(err: unknown): void {
    this.#noteFailure();
    this.#report(asError(err));
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#schedule(this.#backoffMs());
    this.#maybeSpill();
  }

  #backoffMs(): number {
    const exp = Math.min(Math.max(this.#failures - 1, 0), 30);
    return Math.min(this.#retryMaxMs, this.#retryBaseMs * 2 ** exp);
  }

  #noteFailure(): void {
    if (this.#failures === 0) this.#failingSince = this.#now();
    this.#failures++;
  }

  /**
   * Moves the oldest queued records to the spool when the database is in trouble: down to half of
   * `spillAfter` once more than `spillAfter` are queued while writes fail, everything once writes
   * have failed (or one INSERT has hung) for `spillAfterMs`. One spill at a time; the next one
   * starts when it ends, so spills batch themselves to the speed of the disk.
   */
  #maybeSpill(): void {
    if (this.#spoolDir === undefined || this.#spilling !== undefined || this.#closed || this.#queue.length === 0) return;
    const since = this.#failingSince ?? this.#writer.writeStartedAt;
    if (since === undefined) return;
    const now = this.#now();
    if (now < this.#spillPausedUntil) return;
    let keep: number;
    if (now - since >= this.#spillAfterMs) keep = 0;
    else if (this.#failingSince !== undefined && this.#queue.length > this.#spillAfter) keep = Math.floor(this.#spillAfter / 2);
    else return;
    if (this.#queue.length <= keep) return;
    const moved = this.#queue.splice(0, this.#queue.length - keep);
    this.#spilling = this.#spill(moved).finally(() => {
      this.#spilling = undefined;
      this.#maybeSpill();
    });
  }

  /** Appends to the spool; on failure the records go back to the front of the queue. Never rejects. */
  async #spill(moved: Queued[]): Promise<void> {
    try {
      const spool = await this.#openSpool();
      const { spooled } = await spool.append(moved.map((q) => toUsageRecord(q.row)));
      this.#release(moved);
      if (spooled > 0) this.#notifySpill(spooled);
    } catch (err) {
      this.#spillPausedUntil = this.#now() + this.#retryMaxMs;
      this.#requeue(moved);
      this.#report(new Error("usage spool write failed; records kept in memory", { cause: err }));
    }
  }

  #openSpool(): Promise<UsageSpool> {
    if (this.#spoolDir === undefined) return Promise.reject(new Error("the usage ledger has no spool directory"));
    this.#spoolOpening ??= UsageSpool.open({
      dir: this.#spoolDir,
      ...(this.#spoolMaxBytes === undefined ? {} : { maxBytes: this.#spoolMaxBytes }),
      onError: (err) => this.#spoolError(err),
    }).then(
      (spool) => (this.#spool = spool),
      (err: unknown) => {
        this.#spoolOpening = undefined;
        throw err;
      },
    );
    return this.#spoolOpening;
  }

  /** Replays the spool in the background, unless a replay runs already or there is nothing to replay. */
  #startReplay(): void {
    if (this.#replaying !== undefined || this.#closed || this.#spool === undefined || this.#spool.records === 0) return;
    this.#replaying = this.#replay().then(
      (progressed) => {
        this.#replaying = undefined;
        if (progressed) this.#startReplay(); // records spilled while it ran
      },
      (err: unknown) => {
        this.#replaying = undefined;
        if (!this.#closed) this.#backgroundFailed(err);
      },
    );
  }

  /** Writes what the spool holds, a batch at a time, sharing the write chain with the queue. True when a segment was replayed. */
  async #replay(): Promise<boolean> {
    const spool = await this.#openSpool();
    if (spool.records === 0) return false;
    const result = await spool.replay((records) => this.#serialize(() => this.#writeReplayed(records)), {
      batchSize: this.#batchSize,
      signal: this.#stopReplay.signal,
    });
    if (result.replayed > 0) {
      try {
        this.#onReplay(result.replayed, spool.records);
      } catch {
        // A failing callback must not break the writer.
      }
    }
    return result.segments > 0;
  }

  async #writeReplayed(records: UsageRecord[]): Promise<void> {
    const rows: NewGenerationRow[] = [];
    for (const r of records) {
      try {
        rows.push(toGenerationRow(r));
      } catch (err) {
        this.#dropped++;
        this.#report(new UsageRecordsDroppedError(1, `spooled request ${r.requestId} is malformed`, { cause: err }));
      }
    }
    // A failure leaves the rows in the spool, to be replayed again: nothing to put back.
    const kept: number[] = [];
    await this.#writer.write(rows, () => undefined, kept);
    // A refused row the dead-letter file could not take: keep the segment, to try again later.
    if (kept.length > 0) throw new Error(`usage ledger: ${kept.length} refused row(s) could not be dead-lettered; the spool keeps them`);
  }

  /** Writes queued records with seq <= target, a batch at a time. */
  async #drain(target: number): Promise<void> {
    for (;;) {
      let n = 0;
      while (n < this.#batchSize && n < this.#queue.length && this.#queue[n]!.seq <= target) n++;
      if (n === 0) return;
      const batch = this.#queue.splice(0, n);
      this.#inFlight = batch;
      let unwritten = batch.length;
      const kept: number[] = [];
      try {
        await this.#writer.write(
          batch.map((q) => q.row),
          (from) => {
            unwritten = from;
            this.#requeue(batch.slice(from));
          },
          kept,
        );
      } finally {
        this.#inFlight = [];
        // Refused and not dead-lettered either: a journaled one stays in the journal for the next
        // start to try again, the others are lost.
        let lost = 0;
        for (const i of kept) {
          if (batch[i]!.journal === 0) lost++;
          batch[i]!.journal = 0;
        }
        if (lost > 0) {
          this.#dropped += lost;
          this.#report(new UsageRecordsDroppedError(lost, "the database refused them and the dead-letter file cannot be written"));
        }
        // Written or dead-lettered: the journal need not hold them any more.
        this.#release(batch.slice(0, unwritten));
      }
    }
  }

  /** The records are in the database, the spool or the dead-letter file now. */
  #release(queued: readonly Queued[]): void {
    const journal = this.#journal;
    if (journal === undefined) return;
    for (const q of queued) {
      if (q.journal === 0) continue;
      journal.release(q.journal);
      q.journal = 0;
    }
  }

  #requeue(rows: Queued[]): void {
    this.#queue = rows.concat(this.#queue);
  }

  #notifySpill(records: number): void {
    try {
      this.#onSpill(records);
    } catch {
      // A failing callback must not break the writer.
    }
  }

  #spoolError(err: Error): void {
    if (err instanceof UsageSpoolDropError) {
      this.#dropped += err.dropped;
      this.#report(new UsageRecordsDroppedError(err.dropped, err.why, { cause: err }));
    } else {
      this.#report(err);
    }
  }

  #reportDrops(): void {
    if (this.#droppedUnreported === 0) return;
    const n = this.#droppedUnreported;
    this.#droppedUnreported = 0;
    this.#report(new UsageRecordsDroppedError(n, `the queue is full (${this.#maxQueue} records)`));
  }

  #report(err: Error): void {
    try {
      this.#onError(err);
    } catch {
      // A failing error callback must not break the writer.
    }
  }
}

/** Settles like `work`, or rejects once `deadline` (Date.now() ms) passes. */
async function withTimeout<T>(work: Promise<T>, deadline: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), Math.max(0, deadline - Date.now()));
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}

