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
import { createReadStream } from "node:fs";
import { mkdir, open, readdir, rename, rm, stat, type FileHandle } from "node:fs/promises";
import { join, resolve } from "node:path";
import { acquirePidLock } from "./pid-lock.js";
import type { UsageRecord, UsageStatus } from "../core/types.js";
import type { AttemptRecord } from "../errors/llm-error.js";

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

export interface SpoolReplayResult {
  /** Records handed to the writer (and written) in this replay. */
  replayed: number;
  /** Torn or unreadable lines skipped (and reported). */
  skipped: number;
  /** Segments written and deleted. */
  segments: number;
}

export interface SpoolReplayOptions {
  /** Records per writer call. Default 256. */
  batchSize?: number;
  /** Stops the replay between batches; the current segment stays on disk. */
  signal?: AbortSignal;
}

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

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const NEWLINE = 0x0a;
const SEGMENT_NAME = /^spool-(\d+)\.jsonl$/;

interface Segment {
  n: number;
  path: string;
  bytes: number;
  /** Complete lines, i.e. records (a torn or corrupt line is counted only when it ends in a newline). */
  records: number;
}

interface ActiveSegment extends Segment {
  fh: FileHandle;
}

interface WaitingAppend {
  data: Buffer;
  records: number;
  resolve(): void;
  reject(err: unknown): void;
}

export function segmentName(n: number): string {
  return `spool-${String(n).padStart(12, "0")}.jsonl`;
}

/** One line of JSON, without the newline. Throws for a record that has no faithful JSON form. */
export function encodeSpooledRecord(r: UsageRecord): string {
  return JSON.stringify({
    ...r,
    costUsdNanos: r.costUsdNanos.toString(),
    startedAt: r.startedAt.toISOString(),
    finishedAt: r.finishedAt.toISOString(),
  });
}

/** The inverse of encodeSpooledRecord; throws when the line is not a complete record. */
export function decodeSpooledRecord(line: string): UsageRecord {
  const o: unknown = JSON.parse(line);
  if (typeof o !== "object" || o === null || Array.isArray(o)) throw new Error("not a JSON object");
  const v = o as Record<string, unknown>;
  const str = (k: string): string => {
    if (typeof v[k] !== "string") throw new Error(`${k} is not a string`);
    return v[k];
  };
  const num = (k: string): number => {
    if (typeof v[k] !== "number") throw new Error(`${k} is not a number`);
    return v[k];
  };
  const date = (k: string): Date => {
    const d = new Date(str(k));
    if (Number.isNaN(d.getTime())) throw new Error(`${k} is not a date`);
    return d;
  };
  const cost = str("costUsdNanos");
  if (!/^-?\d+$/.test(cost)) throw new Error("costUsdNanos is not an integer");
  if (v["errorReason"] !== null) str("errorReason");
  if (v["timeToFirstTokenMs"] !== null) num("timeToFirstTokenMs");
  if (typeof v["cached"] !== "boolean") throw new Error("cached is not a boolean");
  if (!Array.isArray(v["attempts"])) throw new Error("attempts is not an array");
  const metadata = v["metadata"];
  if (typeof metadata !== "object" || metadata === null || Array.isArray(metadata)) throw new Error("metadata is not an object");
  return {
    id: str("id"),
    requestId: str("requestId"),
    ...(typeof v["clientRequestId"] === "string" ? { clientRequestId: v["clientRequestId"] } : {}),
    keyId: str("keyId"),
    tenant: str("tenant"),
    model: str("model"),
    provider: str("provider"),
    status: str("status") as UsageStatus,
    errorReason: v["errorReason"] as string | null,
    inputTokens: num("inputTokens"),
    outputTokens: num("outputTokens"),
    costUsdNanos: BigInt(cost),
    cached: v["cached"],
    attempts: v["attempts"] as AttemptRecord[],
    latencyMs: num("latencyMs"),
    timeToFirstTokenMs: v["timeToFirstTokenMs"] as number | null,
    startedAt: date("startedAt"),
    finishedAt: date("finishedAt"),
    metadata: metadata as Record<string, string>,
  };
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
      await this.#replaySegment(segment, write, batchSize, options.signal, result);
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

  async #replaySegment(
    segment: Segment,
    write: (batch: UsageRecord[]) => Promise<void>,
    batchSize: number,
    signal: AbortSignal | undefined,
    result: SpoolReplayResult,
  ): Promise<void> {
    let batch: UsageRecord[] = [];
    let lineNo = 0;
    const flushBatch = async () => {
      if (batch.length === 0) return;
      signal?.throwIfAborted();
      const b = batch;
      batch = [];
      await write(b);
      result.replayed += b.length;
    };
    const takeLine = async (bytes: Buffer) => {
      lineNo++;
      if (bytes.length === 0) return;
      try {
        batch.push(decodeSpooledRecord(bytes.toString("utf8")));
      } catch (err) {
        result.skipped++;
        this.#report(new UsageSpoolCorruptLineError(segment.path, lineNo, bytes.length, asError(err).message, { cause: err }));
        return;
      }
      if (batch.length >= batchSize) await flushBatch();
    };

    let carry: Buffer[] = [];
    try {
      for await (const chunk of createReadStream(segment.path, { highWaterMark: MiB }) as AsyncIterable<Buffer>) {
        let start = 0;
        for (let nl = chunk.indexOf(NEWLINE, start); nl !== -1; nl = chunk.indexOf(NEWLINE, start)) {
          const piece = chunk.subarray(start, nl);
          const line = carry.length === 0 ? piece : Buffer.concat([...carry, piece]);
          carry = [];
          start = nl + 1;
          await takeLine(line);
        }
        if (start < chunk.length) carry.push(chunk.subarray(start));
      }
    } catch (err) {
      // Removed behind the spool's back: nothing left to replay from it.
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      this.#report(new Error(`usage spool: segment ${segment.path} vanished before it was replayed`, { cause: err }));
      return;
    }
    await flushBatch();
    if (carry.length > 0) {
      const torn = Buffer.concat(carry);
      result.skipped++;
      this.#report(
        new UsageSpoolCorruptLineError(segment.path, lineNo + 1, torn.length, "torn last line (the writer stopped mid-write)"),
      );
    }
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

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

async function writeAll(fh: FileHandle, data: Buffer): Promise<void> {
  let offset = 0;
  while (offset < data.length) {
    const { bytesWritten } = await fh.write(data, offset, data.length - offset);
    offset += bytesWritten;
  }
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, "r");
  try {
    await fh.sync();
  } catch (err) {
    // Some platforms cannot fsync a directory; the data itself is still fsync'd.
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "EINVAL" && code !== "EISDIR" && code !== "EPERM") throw err;
  } finally {
    await fh.close();
  }
}

async function countLines(path: string): Promise<number> {
  let lines = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: MiB }) as AsyncIterable<Buffer>) {
    for (let i = chunk.indexOf(NEWLINE); i !== -1; i = chunk.indexOf(NEWLINE, i + 1)) lines++;
  }
  return lines;
}

/** One process (and one instance) per spool: two writers would delete each other's segments. */
function lockSpoolDir(dir: string): Promise<() => Promise<void>> {
  return acquirePidLock(join(dir, "spool.lock"), (owner: number) =>
    owner === process.pid
      ? `the usage spool in ${dir} is already open in this process`
      : `the usage spool in ${dir} is in use by process ${owner}; give each process its own DATA_DIR`,
  );
}
