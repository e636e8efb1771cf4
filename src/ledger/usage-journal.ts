/**
 * The usage journal: a write-ahead log that makes a usage record survive a crash of the process
 * (kill -9, an OOM kill, a fatal error) from the moment it is recorded, before the call's last
 * frame goes out, while the ledger's normal batched INSERTs carry on from memory.
 *
 * `append()` writes the record as one JSON line (the spool's format) with a synchronous write(2)
 * to `journal-<n>.jsonl` in the spool directory. Once write(2) returns, the bytes are in the
 * kernel's page cache, which outlives the process; there is no fsync per record, so a power cut
 * can still lose the records of the last moments that were not yet in the database.
 *
 * Each record is `release()`d once it is durably elsewhere (written to the database, moved to the
 * fsync'd spool, or dead-lettered). A segment whose records are all released is truncated (the
 * one being appended to) or deleted (an older one); past `segmentBytes` a new segment is started,
 * so a record that stays unreleased never keeps more than its own segment on disk.
 *
 * What a process leaves behind is replayed by the next one: `leftovers()` lists the files, and the
 * ledger hands them to the spool (UsageSpool.adopt), whose replay inserts them idempotently by
 * request id. The directory is the spool's, under its pid lock: one process at a time.
 */
import { closeSync, ftruncateSync, openSync, readdirSync, unlinkSync, writeSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import type { UsageRecord } from "../core/types.js";
import { encodeSpooledRecord } from "./spooled-record.js";

export interface UsageJournalOptions {
  /** The spool directory (it exists, and the caller holds its lock). */
  dir: string;
  /** A new segment is started once the current one reaches this size. Default 4 MiB. */
  segmentBytes?: number;
  /** Write failures and records that cannot be encoded; the journal never throws from append(). */
  onError?: (err: Error) => void;
}

const JOURNAL_NAME = /^journal-(\d+)\.jsonl$/;

export function journalName(n: number): string {
  return `journal-${String(n).padStart(12, "0")}.jsonl`;
}

interface JournalSegment {
  n: number;
  path: string;
  /** Open for appending while this is the active segment. */
  fd: number | undefined;
  bytes: number;
  /** Records appended and not yet released. */
  outstanding: number;
}

export class UsageJournal {
  readonly #dir: string;
  readonly #segmentBytes: number;
  readonly #onError: (err: Error) => void;
  readonly #segments = new Map<number, JournalSegment>();
  #active: JournalSegment | undefined;
  #last: number;
  #closed = false;

  /** Journal files an earlier process left in `dir`, oldest first (full paths). */
  static async leftovers(dir: string): Promise<string[]> {
    return (await readdir(dir))
      .map((name) => ({ name, m: JOURNAL_NAME.exec(name) }))
      .filter((f): f is { name: string; m: RegExpExecArray } => f.m !== null)
      .sort((a, b) => Number(a.m[1]) - Number(b.m[1]))
      .map((f) => join(dir, f.name));
  }

  constructor(options: UsageJournalOptions) {
    this.#dir = options.dir;
    this.#segmentBytes = Math.max(1, options.segmentBytes ?? 4 * 1024 * 1024);
    this.#onError = options.onError ?? (() => undefined);
    // Numbered past anything left in the directory (leftovers not adopted must not be overwritten).
    let last = 0;
    for (const name of readdirSync(this.#dir)) {
      const m = JOURNAL_NAME.exec(name);
      if (m !== null) last = Math.max(last, Number(m[1]));
    }
    this.#last = last;
  }

  /** Records appended and not yet released. */
  get outstanding(): number {
    let n = 0;
    for (const s of this.#segments.values()) n += s.outstanding;
    return n;
  }

  /**
   * Writes the record through to the page cache before returning. Returns the segment it went to,
   * to be passed to release(); 0 when it could not be journaled (reported to onError: the record
   * then waits in memory only, as it did before the journal).
   */
  append(record: UsageRecord): number {
    if (this.#closed) return 0;
    let data: Buffer;
    try {
      data = Buffer.from(`${encodeSpooledRecord(record)}\n`, "utf8");
    } catch (err) {
      this.#report(new Error("usage journal: the record cannot be encoded", { cause: err }));
      return 0;
    }
    let segment: JournalSegment | undefined;
    try {
      segment = this.#activeSegment();
      let offset = 0;
      while (offset < data.length) offset += writeSync(segment.fd!, data, offset, data.length - offset);
    } catch (err) {
      this.#report(new Error("usage journal write failed; the record waits in memory only", { cause: err }));
      // A partial line stays as the torn tail of a segment appended to no more; replay skips it.
      if (segment !== undefined) this.#retire(segment);
      return 0;
    }
    segment.bytes += data.length;
    segment.outstanding++;
    if (segment.bytes >= this.#segmentBytes) this.#retire(segment);
    return segment.n;
  }

  /** The record appended to `segment` is durable elsewhere now. */
  release(segment: number): void {
    const s = this.#segments.get(segment);
    if (s === undefined || s.outstanding === 0) return;
    s.outstanding--;
    if (s.outstanding > 0) return;
    try {
      if (s === this.#active && s.fd !== undefined) {
        // Everything in it is elsewhere: start it over rather than open a new file.
        ftruncateSync(s.fd, 0);
        s.bytes = 0;
      } else if (s.fd === undefined) {
        this.#segments.delete(s.n);
        unlinkSync(s.path);
      }
    } catch (err) {
      // Left on disk, the records are replayed (idempotently) by the next start: only duplicated work.
      this.#report(new Error(`usage journal: could not clear ${s.path}`, { cause: err }));
    }
  }

  /**
   * Closes the file; deletes the segments whose records were all released. The others stay for
   * the next start to replay. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#active !== undefined) this.#retire(this.#active);
    for (const s of [...this.#segments.values()]) {
      if (s.outstanding > 0) continue;
      this.#segments.delete(s.n);
      try {
        unlinkSync(s.path);
      } catch (err) {
        this.#report(new Error(`usage journal: could not remove ${s.path}`, { cause: err }));
      }
    }
  }

  #activeSegment(): JournalSegment {
    if (this.#active !== undefined) return this.#active;
    const n = ++this.#last;
    const path = join(this.#dir, journalName(n));
    // O_APPEND: after a truncation the next write lands at the new end, offset 0.
    const fd = openSync(path, "ax");
    const segment: JournalSegment = { n, path, fd, bytes: 0, outstanding: 0 };
    this.#segments.set(n, segment);
    this.#active = segment;
    return segment;
  }

  /** Appends go to a new segment from now on; this one is deleted once its records are released. */
  #retire(segment: JournalSegment): void {
    if (this.#active === segment) this.#active = undefined;
    if (segment.fd !== undefined) {
      try {
        closeSync(segment.fd);
      } catch (err) {
        this.#report(new Error(`usage journal: could not close ${segment.path}`, { cause: err }));
      }
      segment.fd = undefined;
    }
    if (segment.outstanding === 0) {
      this.#segments.delete(segment.n);
      try {
        unlinkSync(segment.path);
      } catch {
        // Gone already, or left for the next start: its records were all released.
      }
    }
  }

  #report(err: Error): void {
    try {
      this.#onError(err);
    } catch {
      // A failing error callback must not break the journal.
    }
  }
}
