export type CircuitStateName = "closed" | "open" | "half_open";

export interface BreakerOptions {
  /** Open when failures / calls in the window reach this ratio... */
  failureRatio: number;
  /** ...and the window holds at least this many calls. */
  minCalls: number;
  windowMs: number;
  /** How long an open breaker refuses calls before it lets one probe through. */
  openMs: number;
  now?: () => number;
}

const BUCKETS = 10;

/**
 * A circuit breaker for one deployment: a failure ratio over a sliding window
 * of time buckets with a minimum call count; open for openMs; then half-open,
 * letting exactly one probe through, whose outcome closes or re-opens it.
 */
export class CircuitBreaker {
  private stateName: CircuitStateName = "closed";
  private openedAt = 0;
  private probeInFlight = false;
  private readonly calls = new Array<number>(BUCKETS).fill(0);
  private readonly failures = new Array<number>(BUCKETS).fill(0);
  private bucketStart: number;
  private bucket = 0;
  private readonly bucketMs: number;
  private readonly now: () => number;

  constructor(
    private readonly options: BreakerOptions,
    private readonly onChange?: (from: CircuitStateName, to: CircuitStateName) => void,
  ) {
    this.now = options.now ?? Date.now;
    this.bucketMs = Math.max(1, Math.floor(options.windowMs / BUCKETS));
    this.bucketStart = this.now();
  }

  /** The state as a caller would see it now (an open breaker past its interval reads half-open). */
  get state(): CircuitStateName {
    if (this.stateName === "open" && this.now() - this.openedAt >= this.options.openMs) return "half_open";
    return this.stateName;
  }

  /** Whether a call may go through now; a half-open breaker admits one probe at a time. */
  tryAcquire(): boolean {
    const state = this.state;
    if (state === "closed") return true;
    if (state === "open") return false;
    if (this.probeInFlight) return false;
    this.transition("half_open");
    this.probeInFlight = true;
    return true;
  }

  onSuccess(): void {
    if (this.stateName === "half_open") {
      this.probeInFlight = false;
      this.reset();
      this.transition("closed");
      return;
    }
    this.count(false);
  }

  onFailure(): void {
    if (this.stateName === "half_open") {
      this.probeInFlight = false;
      this.open();
      return;
    }
    this.count(true);
    if (this.stateName !== "closed") return;
    const calls = this.calls.reduce((a, b) => a + b, 0);
    const failures = this.failures.reduce((a, b) => a + b, 0);
    if (calls >= this.options.minCalls && failures / calls >= this.options.failureRatio) this.open();
  }

  /** A call that was admitted but ended for a reason that says nothing of the deployment's health. */
  onIgnored(): void {
    if (this.stateName === "half_open") this.probeInFlight = false;
  }

  private open(): void {
    this.openedAt = this.now();
    this.reset();
    this.transition("open");
  }

  private transition(to: CircuitStateName): void {
    const from = this.stateName;
    if (from === to) return;
    this.stateName = to;
    this.onChange?.(from, to);
  }

  private reset(): void {
    this.calls.fill(0);
    this.failures.fill(0);
  }

  private count(failed: boolean): void {
    this.rotate();
    this.calls[this.bucket] = (this.calls[this.bucket] ?? 0) + 1;
    if (failed) this.failures[this.bucket] = (this.failures[this.bucket] ?? 0) + 1;
  }

  private rotate(): void {
    const now = this.now();
    let steps = Math.floor((now - this.bucketStart) / this.bucketMs);
    if (steps <= 0) return;
    this.bucketStart += steps * this.bucketMs;
    steps = Math.min(steps, BUCKETS);
    for (let i = 0; i < steps; i++) {
      this.bucket = (this.bucket + 1) % BUCKETS;
      this.calls[this.bucket] = 0;
      this.failures[this.bucket] = 0;
    }
  }
}
