export interface StoreHealthOptions {
  /** Resolves when the store answers (a Redis PING). */
  ping: () => Promise<unknown>;
  /** How long a probe waits for its PING before the next round (the same PING stays in flight). */
  timeoutMs: number;
  /** The pause between probe rounds. */
  probeIntervalMs: number;
  /** Told when the store is bypassed (false, with the cause) and used again (true). Must not throw. */
  onChange?: (healthy: boolean, err?: Error) => void;
}

/**
 * Whether a remote store is worth waiting for. An operation that times out trips it: from then
 * on, and for the operations still waiting, the store is bypassed (each one gets its miss at once)
 * instead of every call waiting out its own timeout against a frozen server. A background probe,
 * one PING in flight at most, waits for the store to answer; then it is used again. The same
 * shape as the rate limiter's fallback (limits/resilient-limiter.ts).
 */
export class StoreHealth {
  private healthyNow = true;
  private closed = false;
  private readonly waiting = new Set<() => void>();
  private probing: Promise<void> | undefined;
  private wake: (() => void) | undefined;

  constructor(private readonly options: StoreHealthOptions) {}

  get healthy(): boolean {
    return this.healthyNow && !this.closed;
  }

  /**
   * Registers an operation in flight: `release` is called if the store is bypassed before the
   * operation ends. Call the returned function when it ends.
   */
  hold(release: () => void): () => void {
    this.waiting.add(release);
    return () => this.waiting.delete(release);
  }

  /** An operation timed out: bypass the store, release every operation waiting on it, and probe. */
  trip(err: Error): void {
    if (!this.healthyNow || this.closed) return;
    this.healthyNow = false;
    const released = [...this.waiting];
    this.waiting.clear();
    for (const release of released) release();
    this.report(false, err);
    this.probing ??= this.probe().finally(() => {
      this.probing = undefined;
    });
  }

  /** Stops probing. */
  async close(): Promise<void> {
    this.closed = true;
    this.wake?.();
    await this.probing;
  }

  private report(healthy: boolean, err?: Error): void {
    try {
      this.options.onChange?.(healthy, err);
    } catch {
      // A log line and a metric; their failure must not break the store.
    }
  }

  private async probe(): Promise<void> {
    let inFlight: Promise<boolean> | undefined;
    while (!this.healthyNow && !this.closed) {
      inFlight ??= this.options.ping().then(
        () => true,
        () => false,
      );
      const answered = await settleWithin(inFlight, this.options.timeoutMs);
      if (answered !== "timeout") {
        inFlight = undefined;
        if (answered) {
          if (this.closed) return;
          this.healthyNow = true;
          this.report(true);
          return;
        }
      }
      await this.pause(this.options.probeIntervalMs);
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref();
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }
}

/**
 * The promise's value, or "timeout" when it has not settled within `ms`. On expiry it yields once
 * to I/O (setImmediate) first, so a reply that arrived while the event loop was busy still counts.
 */
export function settleWithin<T>(promise: Promise<T>, ms: number): Promise<T | "timeout"> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => setImmediate(() => resolve("timeout")), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
