/**
 * The spool's files: numbered segments of JSON lines, `spool-<n>.jsonl`, in one directory, and the
 * writes that make them durable (every byte written, the data and the directory entry fsync'd).
 */
import { createReadStream } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";

export const MiB = 1024 ** 2;
export const NEWLINE = 0x0a;
export const SEGMENT_NAME = /^spool-(\d+)\.jsonl$/;

export interface Segment {
  n: number;
  path: string;
  bytes: number;
  /** Complete lines, i.e. records (a torn or corrupt line is counted only when it ends in a newline). */
  records: number;
}

/** The segment appends go to, open for writing. */
export interface ActiveSegment extends Segment {
  fh: FileHandle;
}

export function segmentName(n: number): string {
  return `spool-${String(n).padStart(12, "0")}.jsonl`;
}

export async function writeAll(fh: FileHandle, data: Buffer): Promise<void> {
  let offset = 0;
  while (offset < data.length) {
    const { bytesWritten } = await fh.write(data, offset, data.length - offset);
    offset += bytesWritten;
  }
}

export async function syncDir(dir: string): Promise<void> {
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

export async function countLines(path: string): Promise<number> {
  let lines = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: MiB }) as AsyncIterable<Buffer>) {
    for (let i = chunk.indexOf(NEWLINE); i !== -1; i = chunk.indexOf(NEWLINE, i + 1)) lines++;
  }
  return lines;
}
