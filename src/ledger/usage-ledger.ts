/**
 * The usage writer: `record()` queues in memory and returns at once; a timer and a size
 * threshold write the queue in batched multi-row INSERTs, one row per request id.
 * A failed write puts its records back at the front of the queue and is retried with
 * backoff, so a database outage loses nothing until the queue cap is reached.
 */
import type { Kysely } from "kysely";
import type { UsageRecord, UsageSink } from "../core/types.js";
import type { DatabaseSchema, NewGenerationRow } from "./schema.js";

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
}

/** Records the ledger gave up on: the queue was full, the ledger was closed, or the database rejected the row itself. */
export class UsageRecordsDroppedError extends Error {
  override readonly name = "UsageRecordsDroppedError";
  readonly dropped: number;

  constructor(dropped: number, why: string, options?: ErrorOptions) {
    super(`usage ledger dropped ${dropped} record(s): ${why}`, options);
    this.dropped = dropped;
  }
}

interface Queued {
  /** Enqueue order; `flush()` writes everything up to the sequence number current when it was called. */
  seq: number;
  row: NewGenerationRow;
}

/** SQLSTATE classes that mean "this row is wrong", not "the database is unwell": 22 data exception, 23 integrity. */
function isRowError(err: unknown): boolean {
  if (typeof err !== "object" || err === null || !("code" in err)) return false;
  const code = (err as { code: unknown }).code;
  return typeof code === "string" && (code.startsWith("22") || code.startsWith("23"));
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

export function toGenerationRow(r: UsageRecord): NewGenerationRow {
  return {
    id: r.id,
    request_id: r.requestId,
    key_id: r.keyId,
    tenant: r.tenant,
    model: r.model,
    provider: r.provider,
    status: r.status,
    error_reason: r.errorReason,
    input_tokens: r.inputTokens,
    output_tokens: r.outputTokens,
    cost_usd_nanos: r.costUsdNanos.toString(),
    cached: r.cached,
    attempts: JSON.stringify(r.attempts),
    latency_ms: Math.round(r.latencyMs),
    time_to_first_token_ms: r.timeToFirstTokenMs === null ? null : Math.round(r.timeToFirstTokenMs),
    started_at: r.startedAt,
    finished_at: r.finishedAt,
    metadata: JSON.stringify(r.metadata),
  };
}

export class UsageLedger implements UsageSink {
  readonly #db: Kysely<DatabaseSchema>;
  readonly #flushIntervalMs: number;
  readonly #batchSize: number;
  readonly #maxQueue: number;
  readonly #retryBaseMs: number;
  readonly #retryMaxMs: number;
  readonly #onError: (err: Error) => void;

  #queue: Queued[] = [];
  #seq = 0;
  #timer: NodeJS.Timeout | undefined;
  /** Every write runs on this chain, one at a time, so concurrent flushes never write a row twice. */
  #tail: Promise<void> = Promise.resolve();
  /** A background write is queued or running. */
  #backgroundBusy = false;
  /** Consecutive failed writes; non-zero means the ledger is backing off. */
  #failures = 0;
  #droppedUnreported = 0;
  #dropped = 0;
  #written = 0;
  #closed = false;

  constructor(opts: UsageLedgerOptions) {
    this.#db = opts.db;
    this.#flushIntervalMs = opts.flushIntervalMs ?? 200;
    this.#batchSize = Math.max(1, opts.batchSize ?? 256);
    this.#maxQueue = Math.max(1, opts.maxQueue ?? 100_000);
    this.#retryBaseMs = opts.retryBaseMs ?? 100;
    this.#retryMaxMs = opts.retryMaxMs ?? 10_000;
    this.#onError = opts.onError ?? (() => undefined);
  }

  /** Records waiting to be written. */
  get pending(): number {
    return this.#queue.length;
  }

  /** Records given up on since start (queue full, closed, or rejected by the database). */
  get dropped(): number {
    return this.#dropped;
  }

  /** Rows sent to the database in successful INSERTs (duplicates of a request id included). */
  get written(): number {
    return this.#written;
  }

  record(record: UsageRecord): void {
    try {
      if (this.#closed) {
        this.#report(new UsageRecordsDroppedError(1, "the ledger is closed"));
        this.#dropped++;
        return;
      }
      if (this.#queue.length >= this.#maxQueue) {
        this.#dropped++;
        this.#droppedUnreported++;
        this.#schedule(this.#flushIntervalMs);
        return;
      }
      this.#queue.push({ seq: ++this.#seq, row: toGenerationRow(record) });
      if (this.#queue.length >= this.#batchSize && this.#failures === 0) this.#startBackgroundWrite();
      else this.#schedule(this.#flushIntervalMs);
    } catch (err) {
      // A record that cannot even be turned into a row (e.g. a missing field) must not reach the queue.
      this.#dropped++;
      this.#report(new UsageRecordsDroppedError(1, "the record is malformed", { cause: err }));
    }
  }

  /**
   * Writes everything queued so far, now, even while backing off. Rejects when a write fails;
   * the records stay queued and the background retry carries on.
   */
  flush(): Promise<void> {
    const target = this.#seq;
    return this.#serialize(() => this.#drain(target)).then(
      () => {
        this.#failures = 0;
        this.#reportDrops();
      },
      (err: unknown) => {
        this.#failures++;
        this.#reportDrops();
        this.#schedule(this.#backoffMs());
        throw err;
      },
    );
  }

  /** Stops the timer and writes what is queued. Records arriving afterwards are dropped and reported. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.flush();
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
    if (this.#backgroundBusy) return;
    this.#backgroundBusy = true;
    const target = this.#seq;
    void this.#serialize(() => this.#drain(target)).then(
      () => {
        this.#backgroundBusy = false;
        this.#failures = 0;
        this.#reportDrops();
        if (this.#queue.length >= this.#batchSize) this.#startBackgroundWrite();
        else if (this.#queue.length > 0) this.#schedule(this.#flushIntervalMs);
      },
      (err: unknown) => {
        this.#backgroundBusy = false;
        this.#failures++;
        this.#report(asError(err));
        this.#reportDrops();
        if (this.#timer !== undefined) clearTimeout(this.#timer);
        this.#timer = undefined;
        this.#schedule(this.#backoffMs());
      },
    );
  }

  #backoffMs(): number {
    const exp = Math.min(this.#failures - 1, 30);
    return Math.min(this.#retryMaxMs, this.#retryBaseMs * 2 ** exp);
  }

  /** Writes queued records with seq <= target, a batch at a time. */
  async #drain(target: number): Promise<void> {
    for (;;) {
      let n = 0;
      while (n < this.#batchSize && n < this.#queue.length && this.#queue[n]!.seq <= target) n++;
      if (n === 0) return;
      await this.#writeBatch(this.#queue.splice(0, n));
    }
  }

  /**
   * Writes one batch. When the database fails, the rows not yet written go back to the front
   * of the queue and the error is rethrown. When the database rejects a row itself (bad data),
   * the batch is written one row at a time and only the rejected rows are dropped and reported,
   * so one bad record cannot block the ledger.
   */
  async #writeBatch(batch: Queued[]): Promise<void> {
    try {
      await this.#insert(batch.map((q) => q.row));
      this.#written += batch.length;
      return;
    } catch (err) {
      if (!isRowError(err)) {
        this.#requeue(batch);
        throw err;
      }
    }
    for (let i = 0; i < batch.length; i++) {
      const { row } = batch[i]!;
      try {
        await this.#insert([row]);
        this.#written++;
      } catch (err) {
        if (!isRowError(err)) {
          this.#requeue(batch.slice(i));
          throw err;
        }
        this.#dropped++;
        this.#report(new UsageRecordsDroppedError(1, `the database rejected request ${row.request_id}`, { cause: err }));
      }
    }
  }

  #requeue(rows: Queued[]): void {
    this.#queue = rows.concat(this.#queue);
  }

  async #insert(rows: NewGenerationRow[]): Promise<void> {
    await this.#db
      .insertInto("generations")
      .values(rows)
      .onConflict((oc) => oc.column("request_id").doNothing())
      .execute();
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
