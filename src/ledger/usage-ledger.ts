/**
 * The usage writer: `record()` queues in memory (usage-queue.ts) and returns at once; a timer and a
 * size threshold write the queue in batches (generation-writer.ts), one INSERT of per-column arrays
 * each (generations-insert.ts), one row per request id, which the server generates for every call (ON
 * CONFLICT (request_id) DO NOTHING: writing a record twice, as a replay may, never counts it twice; no
 * caller can choose the id, so no call can hide behind another's row).
 * A failed write puts its records back at the front of the queue and is retried with backoff.
 * Its options and their defaults are in usage-ledger-options.ts.
 *
 * With `spoolDir`, an outage longer than memory holds loses nothing either: while writes fail,
 * the oldest records move past `spillAfter` (or all of them after `spillAfterMs`) to an
 * append-only spool on local disk (usage-spool.ts, reached through spool-bridge.ts), which is
 * replayed in the background once writes succeed again and on `start()`; `close()` spools whatever
 * the database did not take. Without it, records wait in memory up to `maxQueue`.
 *
 * With a spool, `start()` also opens the journal (usage-journal.ts): `record()` writes each record
 * through to the page cache before it returns, so an acknowledged call's record survives kill -9;
 * the next start replays what the journal holds. And a row the database refuses for its content
 * goes to the dead-letter file (dead-letter.ts) beside the spool, not to /dev/null.
 */
import type { UsageRecord, UsageSink } from "../core/types.js";
import { DeadLetterFile } from "./dead-letter.js";
import { toGenerationRow } from "./generation-row.js";
import { GenerationWriter } from "./generation-writer.js";
import { SpoolBridge } from "./spool-bridge.js";
import { UsageRecordsDroppedError } from "./usage-ledger-errors.js";
import { ledgerSettings, type LedgerSettings, type UsageLedgerOptions } from "./usage-ledger-options.js";
import { UsageJournal } from "./usage-journal.js";
import { UsageQueue, type Queued } from "./usage-queue.js";
import { asError } from "../core/as-error.js";

export type { UsageLedgerOptions } from "./usage-ledger-options.js";


export class UsageLedger implements UsageSink {
  readonly #settings: LedgerSettings;
  readonly #deadLetter: DeadLetterFile | undefined;
  readonly #writer: GenerationWriter;
  /** The way to the spool; undefined without `spoolDir`. */
  readonly #spool: SpoolBridge | undefined;

  readonly #queue = new UsageQueue();
  #journal: UsageJournal | undefined;
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

  constructor(opts: UsageLedgerOptions) {
    const s = ledgerSettings(opts);
    this.#settings = s;
    this.#deadLetter = s.deadLetterPath === undefined ? undefined : new DeadLetterFile(s.deadLetterPath);
    this.#writer = new GenerationWriter({
      db: s.db,
      deadLetter: this.#deadLetter,
      now: s.now,
      onInserted: () => {
        this.#failures = 0;
        this.#failingSince = undefined;
      },
      report: (err) => this.#report(err),
    });
    this.#spool =
      s.spoolDir === undefined
        ? undefined
        : new SpoolBridge({
            dir: s.spoolDir,
            maxBytes: s.spoolMaxBytes,
            spillAfter: s.spillAfter,
            spillAfterMs: s.spillAfterMs,
            pauseMs: s.retryMaxMs,
            batchSize: s.batchSize,
            now: s.now,
            queue: this.#queue,
            writer: this.#writer,
            serialize: (job) => this.#serialize(job),
            failingSince: () => this.#failingSince,
            release: (queued) => this.#release(queued),
            replayFailed: (err) => this.#backgroundFailed(err),
            drop: (err) => this.#drop(err),
            report: (err) => this.#report(err),
            onSpill: s.onSpill,
            onReplay: s.onReplay,
          });
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
    if (this.#spool === undefined || this.#closed) return { spooled: 0 };
    const spool = await this.#spool.open();
    if (this.#closed) return { spooled: spool.records };
    if (this.#settings.journal && this.#journal === undefined) {
      const leftovers = await UsageJournal.leftovers(spool.dir);
      if (this.#closed) return { spooled: spool.records };
      await spool.adopt(leftovers);
      if (this.#closed) return { spooled: spool.records };
      this.#journal = new UsageJournal({ dir: spool.dir, onError: (err) => this.#report(err) });
    }
    this.#spool.startReplay();
    return { spooled: spool.records };
  }

  record(record: UsageRecord): void {
    try {
      if (this.#closed) {
        this.#report(new UsageRecordsDroppedError(1, "the ledger is closed"));
        this.#dropped++;
        return;
      }
      if (this.#queue.length >= this.#settings.maxQueue) this.#spool?.maybeSpill();
      if (this.#queue.length >= this.#settings.maxQueue) {
        this.#dropped++;
        this.#droppedUnreported++;
        this.#schedule(this.#settings.flushIntervalMs);
        return;
      }
      const row = toGenerationRow(record);
      // Through to the page cache before the call can answer: from here a crash cannot lose it.
      const journal = this.#journal === undefined ? 0 : this.#journal.append(record);
      this.#queue.push(row, journal);
      if (this.#queue.length >= this.#settings.batchSize && this.#failures === 0) this.#startBackgroundWrite();
      else this.#schedule(this.#settings.flushIntervalMs);
      this.#spool?.maybeSpill();
    } catch (err) {
      // A record that cannot even be turned into a row (e.g. a missing field) must not reach the queue.
      this.#drop(new UsageRecordsDroppedError(1, "the record is malformed", { cause: err }));
    }
  }

  /**
   * Writes everything recorded so far, now, even while backing off: the queue, then the spool.
   * Rejects when a write fails; the records stay queued (or spooled) and the background retry carries on.
   */
  async flush(): Promise<void> {
    const target = this.#queue.lastSeq;
    try {
      await this.#flushQueue(target);
      if (this.#spool !== undefined && !this.#closed) await this.#spool.replay();
    } catch (err) {
      this.#noteFailure();
      this.#schedule(this.#backoffMs());
      this.#spool?.maybeSpill();
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
    this.#spool?.stop();
    const deadline = Date.now() + this.#settings.closeTimeoutMs;
    let failure: unknown;
    try {
      await withTimeout(this.#flushQueue(this.#queue.lastSeq), deadline, "the usage ledger could not write its queue before closeTimeoutMs");
    } catch (err) {
      failure = err;
    } finally {
      this.#reportDrops();
    }
    const spool = this.#spool;
    if (spool === undefined) {
      if (failure !== undefined) throw failure;
      return;
    }

    let spoolFailure: unknown;
    await spool.spilling;
    // A write still running may yet succeed: spooling its records too costs a duplicate INSERT, never a double count.
    const left = [...(failure === undefined ? [] : this.#inFlight), ...this.#queue.takeAllBut(0)];
    if (left.length > 0) {
      try {
        await spool.spoolRemaining(left);
      } catch (err) {
        spoolFailure = err;
      }
    }
    // The replay was told to stop; its current batch may be waiting on the database.
    const replaying = spool.replaying;
    if (replaying !== undefined) await withTimeout(replaying, deadline, "").catch(() => undefined);
    // Before the lock goes: what it still holds is the next start's to replay.
    this.#journal?.close();
    await spool.close();
    if (spoolFailure !== undefined) throw spoolFailure;
  }

  /** Writes the queue up to `target`, including records a spill in progress may put back. */
  async #flushQueue(target: number): Promise<void> {
    await this.#serialize(() => this.#drain(target));
    const spilling = this.#spool?.spilling;
    if (spilling !== undefined) {
      await spilling;
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
    const target = this.#queue.lastSeq;
    void this.#serialize(() => this.#drain(target)).then(
      () => {
        this.#backgroundBusy = false;
        this.#reportDrops();
        if (this.#queue.length >= this.#settings.batchSize) this.#startBackgroundWrite();
        else if (this.#queue.length > 0) this.#schedule(this.#settings.flushIntervalMs);
        // After an outage this is also the probe: with everything spilled, the replay is the write that tells.
        this.#spool?.startReplay();
      },
      (err: unknown) => {
        this.#backgroundBusy = false;
        this.#reportDrops();
        this.#backgroundFailed(err);
      },
    );
  }

  /** A background write or replay failed: back off, and spill if the trouble lasts. */
  #backgroundFailed(err: unknown): void {
    this.#noteFailure();
    this.#report(asError(err));
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#schedule(this.#backoffMs());
    this.#spool?.maybeSpill();
  }

  #backoffMs(): number {
    const exp = Math.min(Math.max(this.#failures - 1, 0), 30);
    return Math.min(this.#settings.retryMaxMs, this.#settings.retryBaseMs * 2 ** exp);
  }

  #noteFailure(): void {
    if (this.#failures === 0) this.#failingSince = this.#settings.now();
    this.#failures++;
  }

  /** Writes queued records with seq <= target, a batch at a time. */
  async #drain(target: number): Promise<void> {
    for (;;) {
      const batch = this.#queue.takeUpTo(target, this.#settings.batchSize);
      if (batch.length === 0) return;
      this.#inFlight = batch;
      let unwritten = batch.length;
      const kept: number[] = [];
      try {
        await this.#writer.write(
          batch.map((q) => q.row),
          (from) => {
            unwritten = from;
            this.#queue.putBack(batch.slice(from));
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
        if (lost > 0) this.#drop(new UsageRecordsDroppedError(lost, "the database refused them and the dead-letter file cannot be written"));
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

  #drop(err: UsageRecordsDroppedError): void {
    this.#dropped += err.dropped;
    this.#report(err);
  }

  #reportDrops(): void {
    if (this.#droppedUnreported === 0) return;
    const n = this.#droppedUnreported;
    this.#droppedUnreported = 0;
    this.#report(new UsageRecordsDroppedError(n, `the queue is full (${this.#settings.maxQueue} records)`));
  }

  #report(err: Error): void {
    try {
      this.#settings.onError(err);
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
