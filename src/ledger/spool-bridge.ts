/**
 * The usage ledger's way to its disk spool (usage-spool.ts): opens the spool when first needed,
 * moves queued records to it while the database is in trouble (a spill), and replays it in the
 * background through the ledger's write chain once writes succeed again. When to spill is decided
 * here; the queue, the write chain and the backoff stay the ledger's.
 */
import type { UsageRecord } from "../core/types.js";
import { toGenerationRow, toUsageRecord } from "./generation-row.js";
import type { GenerationWriter } from "./generation-writer.js";
import type { NewGenerationRow } from "./schema.js";
import { UsageRecordsDroppedError } from "./usage-ledger-errors.js";
import type { Queued, UsageQueue } from "./usage-queue.js";
import { UsageSpool } from "./usage-spool.js";
import { UsageSpoolDropError } from "./usage-spool-errors.js";

export interface SpoolBridgeOptions {
  /** The spool directory. */
  dir: string;
  /** The spool's size cap on disk; undefined for the spool's default. */
  maxBytes: number | undefined;
  /** Queued records past which the oldest are spilled while writes fail (down to half of it). */
  spillAfter: number;
  /** Trouble this long (failing writes, or one INSERT running) spills everything queued. */
  spillAfterMs: number;
  /** After a spill failed, none for this long. */
  pauseMs: number;
  /** Records per replayed write. */
  batchSize: number;
  now: () => number;
  /** The ledger's queue: spills take from its front, and put back there when the spool fails. */
  queue: UsageQueue;
  /** Writes replayed records (its writeStartedAt also tells of a hung INSERT). */
  writer: GenerationWriter;
  /** The ledger's write chain: a replayed batch takes its turn with the queue's writes. */
  serialize: (job: () => Promise<void>) => Promise<void>;
  /** When the current run of failed writes began; undefined while writes succeed. */
  failingSince: () => number | undefined;
  /** The records are on disk now: the journal may let them go. */
  release: (queued: readonly Queued[]) => void;
  /** A background replay failed the way a write fails: the ledger backs off. */
  replayFailed: (err: unknown) => void;
  /** Records given up on, to be counted as the ledger's drops and reported. */
  drop: (err: UsageRecordsDroppedError) => void;
  /** Any other failure. Must not throw. */
  report: (err: Error) => void;
  onSpill: (records: number) => void;
  onReplay: (replayed: number, remaining: number) => void;
}

export class SpoolBridge {
  readonly #opts: SpoolBridgeOptions;
  #spool: UsageSpool | undefined;
  #spoolOpening: Promise<UsageSpool> | undefined;
  /** Records on their way from the queue to the spool; settles (never rejects) when they are on disk or back in the queue. */
  #spilling: Promise<void> | undefined;
  /** After the spool failed, no spill before this time (by `now`). */
  #spillPausedUntil = 0;
  /** The background replay; settles, never rejects, when it ends. */
  #replaying: Promise<void> | undefined;
  #stopped = false;
  readonly #stopReplay = new AbortController();

  constructor(options: SpoolBridgeOptions) {
    this.#opts = options;
  }

  /** Records waiting in the spool (0 before it is opened). */
  get records(): number {
    return this.#spool?.records ?? 0;
  }

  /** The spill under way, if any. */
  get spilling(): Promise<void> | undefined {
    return this.#spilling;
  }

  /** The background replay under way, if any. */
  get replaying(): Promise<void> | undefined {
    return this.#replaying;
  }

  /** Opens the spool, or resolves with the one open (or opening) already; after a failure, tries again. */
  open(): Promise<UsageSpool> {
    this.#spoolOpening ??= UsageSpool.open({
      dir: this.#opts.dir,
      ...(this.#opts.maxBytes === undefined ? {} : { maxBytes: this.#opts.maxBytes }),
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

  /**
   * Moves the oldest queued records to the spool when the database is in trouble: down to half of
   * `spillAfter` once more than `spillAfter` are queued while writes fail, everything once writes
   * have failed (or one INSERT has hung) for `spillAfterMs`. One spill at a time; the next one
   * starts when it ends, so spills batch themselves to the speed of the disk.
   */
  maybeSpill(): void {
    const queue = this.#opts.queue;
    if (this.#spilling !== undefined || this.#stopped || queue.length === 0) return;
    const failingSince = this.#opts.failingSince();
    const since = failingSince ?? this.#opts.writer.writeStartedAt;
    if (since === undefined) return;
    const now = this.#opts.now();
    if (now < this.#spillPausedUntil) return;
    let keep: number;
    if (now - since >= this.#opts.spillAfterMs) keep = 0;
    else if (failingSince !== undefined && queue.length > this.#opts.spillAfter) keep = Math.floor(this.#opts.spillAfter / 2);
    else return;
    if (queue.length <= keep) return;
    const moved = queue.takeAllBut(keep);
    this.#spilling = this.#spill(moved).finally(() => {
      this.#spilling = undefined;
      this.maybeSpill();
    });
  }

  /** Replays the spool in the background, unless a replay runs already or there is nothing to replay. */
  startReplay(): void {
    if (this.#replaying !== undefined || this.#stopped || this.#spool === undefined || this.#spool.records === 0) return;
    this.#replaying = this.replay().then(
      (progressed) => {
        this.#replaying = undefined;
        if (progressed) this.startReplay(); // records spilled while it ran
      },
      (err: unknown) => {
        this.#replaying = undefined;
        if (!this.#stopped) this.#opts.replayFailed(err);
      },
    );
  }

  /** Writes what the spool holds, a batch at a time, on the ledger's write chain. True when a segment was replayed. */
  async replay(): Promise<boolean> {
    const spool = await this.open();
    if (spool.records === 0) return false;
    const result = await spool.replay((records) => this.#opts.serialize(() => this.#writeReplayed(records)), {
      batchSize: this.#opts.batchSize,
      signal: this.#stopReplay.signal,
    });
    if (result.replayed > 0) {
      try {
        this.#opts.onReplay(result.replayed, spool.records);
      } catch {
        // A failing callback must not break the writer.
      }
    }
    return result.segments > 0;
  }

  /** No spill or replay starts any more; the replay running stops after its current batch. */
  stop(): void {
    this.#stopped = true;
    this.#stopReplay.abort();
  }

  /**
   * Spools what close() found left. Rejects when the spool cannot take them, after reporting the
   * ones not journaled as dropped (the journaled ones stay in the journal, for the next start to replay).
   */
  async spoolRemaining(left: readonly Queued[]): Promise<void> {
    try {
      await this.#append(left);
    } catch (err) {
      const lost = left.filter((q) => q.journal === 0).length;
      if (lost > 0) {
        this.#opts.drop(new UsageRecordsDroppedError(lost, "the database is unreachable and the spool cannot be written", { cause: err }));
      }
      throw err;
    }
  }

  /** Closes the spool, once an open still under way has ended (it would otherwise keep the lock). */
  async close(): Promise<void> {
    const spool = this.#spool ?? (await this.#spoolOpening?.catch(() => undefined));
    await spool?.close();
  }

  /** Appends to the spool; on failure the records go back to the front of the queue. Never rejects. */
  async #spill(moved: Queued[]): Promise<void> {
    try {
      await this.#append(moved);
    } catch (err) {
      this.#spillPausedUntil = this.#opts.now() + this.#opts.pauseMs;
      this.#opts.queue.putBack(moved);
      this.#opts.report(new Error("usage spool write failed; records kept in memory", { cause: err }));
    }
  }

  async #append(queued: readonly Queued[]): Promise<void> {
    const spool = await this.open();
    const { spooled } = await spool.append(queued.map((q) => toUsageRecord(q.row)));
    this.#opts.release(queued);
    if (spooled > 0) {
      try {
        this.#opts.onSpill(spooled);
      } catch {
        // A failing callback must not break the writer.
      }
    }
  }

  async #writeReplayed(records: UsageRecord[]): Promise<void> {
    const rows: NewGenerationRow[] = [];
    for (const r of records) {
      try {
        rows.push(toGenerationRow(r));
      } catch (err) {
        this.#opts.drop(new UsageRecordsDroppedError(1, `spooled request ${r.requestId} is malformed`, { cause: err }));
      }
    }
    // A failure leaves the rows in the spool, to be replayed again: nothing to put back.
    const kept: number[] = [];
    await this.#opts.writer.write(rows, () => undefined, kept);
    // A refused row the dead-letter file could not take: keep the segment, to try again later.
    if (kept.length > 0) throw new Error(`usage ledger: ${kept.length} refused row(s) could not be dead-lettered; the spool keeps them`);
  }

  #spoolError(err: Error): void {
    if (err instanceof UsageSpoolDropError) this.#opts.drop(new UsageRecordsDroppedError(err.dropped, err.why, { cause: err }));
    else this.#opts.report(err);
  }
}
