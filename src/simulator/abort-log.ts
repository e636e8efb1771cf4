/**
 * Client aborts the simulator saw, handed out once each: `wait()` takes a recorded one
 * not yet claimed, else the next to arrive, so a test can ask after the fact without a race.
 */
import type { AbortFilter, ClientAbort } from "./types.js";

const LIMIT = 1_000;

interface Waiter {
  filter: AbortFilter;
  resolve: (abort: ClientAbort) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

function matches(abort: ClientAbort, filter: AbortFilter): boolean {
  return (filter.path === undefined || filter.path === abort.path) && (filter.tag === undefined || filter.tag === abort.tag);
}

export class AbortLog {
  /** Recorded and not yet claimed; the oldest are dropped past LIMIT. */
  readonly #unclaimed: ClientAbort[] = [];
  readonly #waiters = new Set<Waiter>();

  record(abort: ClientAbort): void {
    for (const w of this.#waiters) {
      if (matches(abort, w.filter)) {
        this.#waiters.delete(w);
        clearTimeout(w.timer);
        w.resolve(abort);
        return;
      }
    }
    this.#unclaimed.push(abort);
    if (this.#unclaimed.length > LIMIT) this.#unclaimed.shift();
  }

  wait(filter: AbortFilter): Promise<ClientAbort> {
    const i = this.#unclaimed.findIndex((a) => matches(a, filter));
    if (i >= 0) return Promise.resolve(this.#unclaimed.splice(i, 1)[0] as ClientAbort);
    const ms = filter.timeoutMs ?? 5_000;
    return new Promise<ClientAbort>((resolve, reject) => {
      const waiter: Waiter = {
        filter,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#waiters.delete(waiter);
          const what = [filter.path && `on ${filter.path}`, filter.tag && `tagged ${filter.tag}`].filter(Boolean).join(" ");
          reject(new Error(`simulator: no client abort${what ? ` ${what}` : ""} within ${ms} ms`));
        }, ms),
      };
      this.#waiters.add(waiter);
    });
  }

  /** Forgets the unclaimed aborts (pending waits keep waiting). */
  clear(): void {
    this.#unclaimed.length = 0;
  }

  /** Rejects every pending wait. */
  close(): void {
    for (const w of this.#waiters) {
      clearTimeout(w.timer);
      w.reject(new Error("simulator: closed"));
    }
    this.#waiters.clear();
  }
}
