/**
 * Replaying one closed segment of the spool: its lines read in order, decoded and handed to the
 * writer in batches. A line that does not decode (usually the last one, torn by a crash mid-write)
 * is skipped and reported; a segment deleted behind the spool's back is reported and left alone.
 */
import { createReadStream } from "node:fs";
import type { UsageRecord } from "../core/types.js";
import { MiB, NEWLINE, type Segment } from "./spool-segment.js";
import { decodeSpooledRecord } from "./spooled-record.js";
import { UsageSpoolCorruptLineError } from "./usage-spool-errors.js";

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

/** Hands the segment's records to `write`, `batchSize` at a time, counting into `result`. */
export async function replaySegment(
  segment: Segment,
  write: (batch: UsageRecord[]) => Promise<void>,
  batchSize: number,
  signal: AbortSignal | undefined,
  result: SpoolReplayResult,
  report: (err: Error) => void,
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
      const why = err instanceof Error ? err.message : String(err);
      report(new UsageSpoolCorruptLineError(segment.path, lineNo, bytes.length, why, { cause: err }));
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
    report(new Error(`usage spool: segment ${segment.path} vanished before it was replayed`, { cause: err }));
    return;
  }
  await flushBatch();
  if (carry.length > 0) {
    const torn = Buffer.concat(carry);
    result.skipped++;
    report(new UsageSpoolCorruptLineError(segment.path, lineNo + 1, torn.length, "torn last line (the writer stopped mid-write)"));
  }
}
