/**
 * The usage spool: where ledger records wait on local disk while the database is unreachable.
 *
 * Records are appended as JSON lines (bigint as a decimal string, dates as ISO 8601) to
 * numbered segment files, `spool-<n>.jsonl`, in one directory. An append resolves only after
 * its bytes are fsync'd, so a record acknowledged as spooled survives kill -9 and power loss;
 * appends that arrive while a write is in progress are written and fsync'd together (group commit).
 *
 * `replay()` closes the segment being appended to, reads the closed segments oldest first and
 * hands their records to a writer in batches; a segment is deleted only after every one of its
 * records was written. A replay that fails leaves the segment where it is, to be read again from
 * its start next time: the writer must be idempotent (the ledger's is, by request id).
 *
 * Every open starts a new segment, so a line torn by a crash mid-write is always the last line
 * of a closed segment; replay skips it and reports it. The spool is bounded by `maxBytes`:
 * records past it are dropped and reported, the one place the ledger may lose a record.
 */
import { mkdir, open, readdir, rename, rm, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { UsageRecord } from "../core/types.js";
import { acquirePidLock } from "./pid-lock.js";
import { replaySegment, type SpoolReplayOptions, type SpoolReplayResult } from "./spool-replay.js";
import { MiB, SEGMENT_NAME, countLines, segmentName, syncDir, writeAll, type ActiveSegment, type Segment } from "./spool-segment.js";
import { encodeSpooledRecord } from "./spooled-record.js";
import { UsageSpoolDropError } from "./usage-spool-errors.js";
import { asError } from "../core/as-error.js";

export interface UsageSpoolOptions {
  /** The spool directory (the service uses `<DATA_DIR>/spool`); created when missing. */
  dir: string;
  /** Bytes on disk at most, all segments together; records past it are dropped and reported. Default 1 GiB. */
  maxBytes?: number;
  /** A segment is closed, and the next append starts a new one, once it reaches this size. Default 16 MiB. */
  segmentBytes?: number;
  /** Dropped records (UsageSpoolDropError), skipped lines (UsageSpoolCorruptLineError) and I/O trouble. */
  onError?: (err: Error) => void;
}

export interface SpoolAppendResult {
  /** Records now on disk (fsync'd). */
  spooled: number;
  /** Records given up on (the spool was full or the record could not be encoded); also reported to onError. */
  dropped: number;
}

const GiB = 1024 ** 3;

interface WaitingAppend {
  data: Buffer;
  records: number;
  resolve(): void;
  reject(err: unknown): void;
}

export class UsageSpool {
  readonly dir: string;
  readonly #maxBytes: number;
  readonly #segmentBytes: number;
  readonly #onError: (err: Error) => void;
  readonly #unlock: () => Promise<void>;

  /** Closed segments, ready for replay. */
  readonly #segments = new Map<number, Segment>();
  #active: ActiveSegment | undefined;
  #lastSegment: number;
  #bytes = 0;
  #records = 0;
  /** Bytes accepted by append() and not yet written, counted against maxBytes. */
  #reserved = 0;
  #dropped = 0;
  #waiting: WaitingAppend[] = [];
  /** Writes and segment rotation run here one at a time. */
  #ops: Promise<void> = Promise.resolve();
  /** Replays run here one at a time. */
  #replays: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(dir: string, options: UsageSpoolOptions, unlock: () => Promise<void>, found: Segment[], last: number) {
    this.dir = dir;
    this.#maxBytes = options.maxBytes ?? GiB;
    this.#segmentBytes = Math.max(1, options.segmentBytes ?? 16 * MiB);
    this.#onError = options.onError ?? (() => undefined);
    this.#unlock = unlock;
    for (const s of found) {
      this.#segments.set(s.n, s);
      this.#bytes += s.bytes;
      this.#records += s.records;
    }
    this.#lastSegment = last;
  }

  /**
   * Opens (creating) the spool directory, takes its lock (one process per spool) and counts the
   * records a previous process left in it. Those are replayed by the next `replay()`.
   */
  static async open(options: UsageSpoolOptions): Promise<UsageSpool> {
    const dir = resolve(options.dir);
    await mkdir(dir, { recursive: true });
    const unlock = await lockSpoolDir(dir);
    try {
      const found: Segment[] = [];
      let last = 0;
      for (const name of await readdir(dir)) {
        const m = SEGMENT_NAME.exec(name);
        if (m === null) continue;
        last = Math.max(last, Number(m[1]));
        const path = join(dir, name);
        const { size } = await stat(path);
        if (size === 0) {
          await rm(path, { force: true });
          continue;
        }
        found.push({ n: Number(m[1]), path, bytes: size, records: await countLines(path) });
      }
      return new UsageSpool(dir, options, unlock, found, last);
    } catch (err) {
      await unlock();
      throw err;
    }
  }

  /**
   * Takes files of spool-format lines left by an earlier process (the usage journal's) into the
   * spool as closed segments, renamed in order after the existing ones, so the next replay writes
   * them; empty ones are deleted. Call right after open(), before appending.
   */
  async adopt(paths: readonly string[]): Promise<number> {
    if (this.#closed) throw new Error("the usage spool is closed");
    let records = 0;
    await this.#exclusive(async () => {
      for (const from of paths) {
        const { size } = await stat(from);
        if (size === 0) {
          await rm(from, { force: true });
          continue;
        }
        const n = ++this.#lastSegment;
        const path = join(this.dir, segmentName(n));
        await rename(from, path);
        const segment: Segment = { n, path, bytes: size, records: await countLines(path) };
        this.#segments.set(n, segment);
        this.#bytes += segment.bytes;
        this.#records += segment.records;
        records += segment.records;
      }
      if (paths.length > 0) await syncDir(this.dir);
    });
    return records;
  }

  /** Records on disk (acknowledged appends not yet replayed). */
  get records(): number {
    return this.#records;
  }

  /** Bytes on disk, all segments together. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Records given up on since open. */
  get dropped(): number {
    return this.#dropped;
  }

  /**
   * Appends records and resolves once they are fsync'd. Records that do not fit under maxBytes
   * (or cannot be encoded) are dropped and reported, not thrown. Rejects when the disk write
   * fails: then none of these records count as spooled (some may be on disk; replays are idempotent).
   */
  append(records: readonly UsageRecord[]): Promise<SpoolAppendResult> {
    if (this.#closed) return Promise.reject(new Error("the usage spool is closed"));
    const lines: string[] = [];
    let bytes = 0;
    let full = 0;
    let unencodable = 0;
    let firstEncodingError: unknown;
    for (const r of records) {
      let line: string;
      try {
        line = `${encodeSpooledRecord(r)}\n`;
      } catch (err) {
        unencodable++;
        firstEncodingError ??= err;
        continue;
      }
      const size = Buffer.byteLength(line);
      if (this.#bytes + this.#reserved + bytes + size > this.#maxBytes) {
        full++;
        continue;
      }
      lines.push(line);
      bytes += size;
    }
    if (full > 0) this.#drop(full, `the spool is full (${this.#maxBytes} bytes in ${this.dir})`);
    if (unencodable > 0) this.#drop(unencodable, "the record cannot be encoded", { cause: firstEncodingError });
    const dropped = full + unencodable;
    if (lines.length === 0) return Promise.resolve({ spooled: 0, dropped });

    this.#reserved += bytes;
    const data = Buffer.from(lines.join(""), "utf8");
    return new Promise<SpoolAppendResult>((resolveAppend, rejectAppend) => {
      this.#waiting.push({
        data,
        records: lines.length,
        resolve: () => resolveAppend({ spooled: lines.length, dropped }),
        reject: rejectAppend,
      });
      void this.#exclusive(() => this.#writeWaiting());
    });
  }

  /**
   * Hands every record spooled before the call to `write`, oldest first, in batches; deletes each
   * segment once all its records were written. Rejects with the writer's error (that segment and
   * the later ones stay) or when `signal` aborts. Replays run one at a time; appends carry on meanwhile.
   */
  replay(write: (batch: UsageRecord[]) => Promise<void>, options: SpoolReplayOptions = {}): Promise<SpoolReplayResult> {
    const run = this.#replays.then(() => this.#replayOnce(write, options));
    this.#replays = run.catch(() => undefined);
    return run;
  }

  /** Waits for appends in progress, closes the segment being written and releases the lock. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#exclusive(() => this.#closeActive());
    await this.#unlock();
  }

  #exclusive(job: () => Promise<void>): Promise<void> {
    const run = this.#ops.then(job);
    this.#ops = run.catch(() => undefined);
    return run;
  }

  /** Writes every waiting append at once with one fsync; settles each. Never throws. */
  async #writeWaiting(): Promise<void> {
    const group = this.#waiting.splice(0);
    if (group.length === 0) return;
    const data = group.length === 1 ? group[0]!.data : Buffer.concat(group.map((g) => g.data));
    const records = group.reduce((n, g) => n + g.records, 0);
    let segment: ActiveSegment | undefined;
    try {
      segment = await this.#activeSegment();
      await writeAll(segment.fh, data);
      await segment.fh.datasync();
    } catch (err) {
      this.#reserved -= data.length;
      if (segment !== undefined) await this.#abandonActive(segment);
      for (const g of group) g.reject(err);
      return;
    }
    this.#reserved -= data.length;
    segment.bytes += data.length;
    segment.records += records;
    this.#bytes += data.length;
    this.#records += records;
    if (segment.bytes >= this.#segmentBytes) await this.#closeActive();
    for (const g of group) g.resolve();
  }

  async #activeSegment(): Promise<ActiveSegment> {
    if (this.#active !== undefined) return this.#active;
    const n = ++this.#lastSegment;
    const path = join(this.dir, segmentName(n));
    const fh = await open(path, "ax");
    // The new directory entry must be durable too, or a power cut could lose the whole file.
    await syncDir(this.dir);
    this.#active = { n, path, fh, bytes: 0, records: 0 };
    return this.#active;
  }

  /** Moves the active segment to the closed ones (or deletes it when empty). */
  async #closeActive(): Promise<void> {
    const segment = this.#active;
    if (segment === undefined) return;
    this.#active = undefined;
    const { fh, ...closed } = segment;
    await fh.close().catch((err: unknown) => this.#report(asError(err)));
    if (closed.bytes === 0) {
      await rm(closed.path, { force: true }).catch((err: unknown) => this.#report(asError(err)));
      return;
    }
    this.#segments.set(closed.n, closed);
  }

  /**
   * A write or fsync failed: whatever reached the file stays as a torn tail of a now closed
   * segment (replay skips it), and the next append starts a new segment.
   */
  async #abandonActive(segment: ActiveSegment): Promise<void> {
    try {
      const { size } = await segment.fh.stat();
      this.#bytes += size - segment.bytes;
      segment.bytes = size;
    } catch {
      // The size stays as last known; only the byte count against maxBytes is affected.
    }
    await this.#closeActive();
  }

  async #replayOnce(write: (batch: UsageRecord[]) => Promise<void>, options: SpoolReplayOptions): Promise<SpoolReplayResult> {
    if (this.#closed) throw new Error("the usage spool is closed");
    const batchSize = Math.max(1, options.batchSize ?? 256);
    await this.#exclusive(() => this.#closeActive());
    const segments = [...this.#segments.values()].sort((a, b) => a.n - b.n);
    const result: SpoolReplayResult = { replayed: 0, skipped: 0, segments: 0 };
    for (const segment of segments) {
      options.signal?.throwIfAborted();
      await replaySegment(segment, write, batchSize, options.signal, result, (err) => this.#report(err));
      // Closed meanwhile: another instance may own the directory now; leave the file to it.
      if (this.#closed) break;
      await rm(segment.path, { force: true });
      this.#segments.delete(segment.n);
      this.#bytes -= segment.bytes;
      this.#records -= segment.records;
      result.segments++;
    }
    return result;
  }

  #drop(n: number, why: string, options?: ErrorOptions): void {
    this.#dropped += n;
    this.#report(new UsageSpoolDropError(n, why, options));
  }

  #report(err: Error): void {
    try {
      this.#onError(err);
    } catch {
      // A failing error callback must not break the spool.
    }
  }
}


/** One process (and one instance) per spool: two writers would delete each other's segments. */
function lockSpoolDir(dir: string): Promise<() => Promise<void>> {
  return acquirePidLock(join(dir, "spool.lock"), (owner: number) =>
    owner === process.pid
      ? `the usage spool in ${dir} is already open in this process`
      : `the usage spool in ${dir} is in use by process ${owner}; give each process its own DATA_DIR`,
  );
}
