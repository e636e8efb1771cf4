/**
 * The one place where pushed values become pulled ones: a producer calls `push`, `end` or `fail`
 * synchronously; a consumer iterates with `for await` (or `next()`). A value waiting for a
 * consumer costs one promise resolution and nothing else, so a streamed token crosses a single
 * async boundary here.
 *
 * Backpressure: `push` returns false once `highWater` values are waiting, and `drained()`
 * resolves when the consumer has taken them (or has left). A consumer that leaves early
 * (`return()`, a `break` out of `for await`) calls `onReturn` once, so the producer can stop.
 *
 * `whenSettled` tells an observer (the RPC layer's timer and span) how the consumer's iteration
 * ended, without wrapping the iteration in another layer.
 */
/** How a consumer's iteration ended: taken to the end, ended by an error, or left early. */
export interface QueueOutcome {
  error?: unknown;
  abandoned?: boolean;
}

export class PushQueue<T> implements AsyncIterableIterator<T> {
  #items: T[] = [];
  #head = 0;
  #ended = false;
  #failed = false;
  #error: unknown;
  #returned = false;
  #waiter: { resolve: (step: IteratorResult<T>) => void; reject: (err: unknown) => void } | undefined;
  #drainWaiters: (() => void)[] = [];
  #settled: ((outcome: QueueOutcome) => void)[] | undefined;
  #settledWith: QueueOutcome | undefined;
  readonly #highWater: number;
  readonly #onReturn: (() => void) | undefined;

  constructor(options: { highWater?: number; onReturn?: () => void } = {}) {
    this.#highWater = options.highWater ?? 64;
    this.#onReturn = options.onReturn;
  }

  /** Whether the consumer has left (after this, pushes are dropped). */
  get returned(): boolean {
    return this.#returned;
  }

  /** Hands a value to the consumer; false when it holds `highWater` values already (wait for `drained()`). */
  push(value: T): boolean {
    if (this.#ended || this.#returned) return true;
    const waiter = this.#waiter;
    if (waiter !== undefined) {
      this.#waiter = undefined;
      waiter.resolve({ value, done: false });
      return true;
    }
    this.#items.push(value);
    return this.#items.length - this.#head < this.#highWater;
  }

  /** Resolves once fewer than `highWater` values wait, or the consumer has left. */
  drained(): Promise<void> {
    if (this.#returned || this.#items.length - this.#head < this.#highWater) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  /** No more values: the consumer's iteration ends after those already pushed. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#settleWaiter();
  }

  /** Ends the iteration with an error, after the values already pushed. */
  fail(error: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#failed = true;
    this.#error = error;
    this.#settleWaiter();
  }

  /**
   * Calls `listener` once, when the consumer has taken the end (`{}`), the error (`{ error }`), or
   * left early (`{ abandoned: true }`); at once if that has happened already.
   */
  whenSettled(listener: (outcome: QueueOutcome) => void): void {
    if (this.#settledWith !== undefined) listener(this.#settledWith);
    else (this.#settled ??= []).push(listener);
  }

  next(): Promise<IteratorResult<T>> {
    if (this.#head < this.#items.length) {
      const value = this.#items[this.#head] as T;
      this.#items[this.#head++] = undefined as T;
      if (this.#head === this.#items.length) {
        this.#items = [];
        this.#head = 0;
      }
      if (this.#drainWaiters.length > 0 && this.#items.length - this.#head < this.#highWater) this.#wakeDrainers();
      return Promise.resolve({ value, done: false });
    }
    if (this.#ended || this.#returned) {
      if (this.#failed) {
        this.#failed = false;
        this.#settle({ error: this.#error });
        return Promise.reject(this.#error);
      }
      this.#settle(this.#returned ? { abandoned: true } : {});
      return Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
  }

  return(): Promise<IteratorResult<T>> {
    if (!this.#returned) {
      this.#returned = true;
      this.#items = [];
      this.#head = 0;
      this.#wakeDrainers();
      // A no-op when the consumer took the end already.
      this.#settle({ abandoned: true });
      if (!this.#ended) this.#onReturn?.();
    }
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  #settleWaiter(): void {
    const waiter = this.#waiter;
    if (waiter === undefined) return;
    this.#waiter = undefined;
    if (this.#failed) {
      this.#failed = false;
      this.#settle({ error: this.#error });
      waiter.reject(this.#error);
    } else {
      this.#settle({});
      waiter.resolve({ value: undefined, done: true });
    }
  }

  #settle(outcome: QueueOutcome): void {
    if (this.#settledWith !== undefined) return;
    this.#settledWith = outcome;
    const listeners = this.#settled;
    this.#settled = undefined;
    if (listeners) for (const listener of listeners) listener(outcome);
  }

  #wakeDrainers(): void {
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const wake of waiters) wake();
  }
}
