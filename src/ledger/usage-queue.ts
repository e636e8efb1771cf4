/**
 * The usage ledger's queue: the records waiting in memory to be written, oldest first, each with
 * its enqueue order and the journal segment holding it. Writes and spills take from the front;
 * what they could not place goes back to the front, so the order holds.
 */
import type { NewGenerationRow } from "./schema.js";

export interface Queued {
  /** Enqueue order; `flush()` writes everything up to the sequence number current when it was called. */
  seq: number;
  row: NewGenerationRow;
  /** The journal segment holding the record until it is released; 0 when not journaled (or released). */
  journal: number;
}

export class UsageQueue {
  #items: Queued[] = [];
  #seq = 0;

  get length(): number {
    return this.#items.length;
  }

  /** The sequence number of the newest record enqueued (0 before the first). */
  get lastSeq(): number {
    return this.#seq;
  }

  push(row: NewGenerationRow, journal: number): void {
    this.#items.push({ seq: ++this.#seq, row, journal });
  }

  /** Takes the oldest records with seq <= target, `max` at most. */
  takeUpTo(target: number, max: number): Queued[] {
    let n = 0;
    while (n < max && n < this.#items.length && this.#items[n]!.seq <= target) n++;
    return this.#items.splice(0, n);
  }

  /** Takes all but the newest `keep` records. */
  takeAllBut(keep: number): Queued[] {
    return this.#items.splice(0, Math.max(0, this.#items.length - keep));
  }

  /** Puts records back at the front, ahead of the ones queued since. */
  putBack(items: readonly Queued[]): void {
    this.#items = items.concat(this.#items);
  }
}
