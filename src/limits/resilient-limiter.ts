import type { AdmitResult, LimitSubject, Limiter, Reservation, Settlement, Ticket } from "./limiter.js";
import { divideLimits } from "./divide-limits.js";

/** The shared limiter the resilient one prefers: a Limiter that can also be pinged. */
export interface SharedLimiter extends Limiter {
  /** Resolves when the store answers. */
  ping(): Promise<void>;
  /** Sends settles that failed while the store was away (optional). */
  retryPendingSettles?(): Promise<void>;
}

export interface ResilientLimiterOptions {
  /** The limiter shared by all replicas (RedisLimiter). */
  shared: SharedLimiter;
  /** The in-process limiter used while the shared one is away (a MemoryLimiter, kept for the process's life). */
  local: Limiter;
  /** How many replicas share the limits: the local limiter enforces each limit divided by this. */
  replicaCount: number;
  /** Told when the fallback starts (true, with the error that caused it) and ends (false). Must not throw. */
  onDegraded: (active: boolean, err?: unknown) => void;
  /** How long an admission waits for the shared limiter before falling back. Default 1000 ms (see createLimiter). */
  timeoutMs?: number;
  /** How often the shared limiter is probed while degraded. Default 1 s. */
  probeIntervalMs?: number;
  /** Called by close() after both limiters are closed (closes the Redis connection). */
  dispose?: () => Promise<void>;
}

type Outcome<T> = { kind: "done"; value: T } | { kind: "failed"; err: unknown } | { kind: "timeout" };

/**
 * Prefers the shared (Redis) limiter and never lets its absence fail a call: when it errs or does
 * not answer within `timeoutMs`, admissions go to the in-process limiter with every limit divided
 * by the replica count, `onDegraded(true, err)` is called once, and a background probe (one PING in
 * flight at most) waits for the shared store to answer again, then `onDegraded(false)`. A ticket
 * settles against the limiter that admitted it. When the shared limiter answers after the timeout,
 * the late admission is settled too (with the call's true amounts, or zero if the local limiter
 * refused the call), so the shared counters stay right.
 */
export class ResilientLimiter implements Limiter {
  private readonly shared: SharedLimiter;
  private readonly local: Limiter;
  private readonly replicaCount: number;
  private readonly onDegraded: (active: boolean, err?: unknown) => void;
  private readonly timeoutMs: number;
  private readonly probeIntervalMs: number;
  private readonly dispose: () => Promise<void>;
  private degradedNow = false;
  private closed = false;
  private probing: Promise<void> | undefined;
  private wakeProbe: (() => void) | undefined;

  constructor(options: ResilientLimiterOptions) {
    this.shared = options.shared;
    this.local = options.local;
    this.replicaCount = Math.max(1, Math.floor(options.replicaCount));
    this.onDegraded = options.onDegraded;
    this.timeoutMs = options.timeoutMs ?? 1_000;
    this.probeIntervalMs = options.probeIntervalMs ?? 1_000;
    this.dispose = options.dispose ?? (() => Promise.resolve());
  }

  /** Whether admissions currently go to the in-process fallback. */
  get degraded(): boolean {
    return this.degradedNow;
  }

  async admit(subjects: readonly LimitSubject[], reservation: Reservation): Promise<AdmitResult> {
    if (this.degradedNow || this.closed) return this.admitLocally(subjects, reservation);
    const attempt = this.shared.admit(subjects, reservation);
    const outcome = await settleWithin(attempt, this.timeoutMs);
    if (outcome.kind === "done") return outcome.value;

    this.degrade(outcome.kind === "failed" ? outcome.err : new Error(`the shared limiter did not answer within ${this.timeoutMs} ms`));
    const result = await this.admitLocally(subjects, reservation);
    if (outcome.kind === "failed") return result;
    // Timed out: the shared limiter may still admit the call later. Settle that admission as well.
    if (!result.ok) {
      void attempt.then((late) => (late.ok ? late.ticket.settle({ tokens: 0, costUsdNanos: 0n }) : undefined), () => undefined);
      return result;
    }
    const localTicket = result.ticket;
    const ticket: Ticket = {
      settle: async (actual: Settlement) => {
        void attempt.then((late) => (late.ok ? late.ticket.settle(actual) : undefined), () => undefined);
        await localTicket.settle(actual);
      },
    };
    return { ok: true, ticket };
  }

  /** Switches to the fallback now (e.g. when Redis did not answer at startup). */
  markDegraded(err: unknown): void {
    this.degrade(err);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wakeProbe?.();
    await this.probing;
    await Promise.allSettled([this.shared.close(), this.local.close()]);
    await this.dispose();
  }

  private admitLocally(subjects: readonly LimitSubject[], reservation: Reservation): Promise<AdmitResult> {
    const shares = subjects.map((s) => ({ ...s, limits: divideLimits(s.limits, this.replicaCount) }));
    return this.local.admit(shares, reservation);
  }

  private degrade(err: unknown): void {
    if (this.degradedNow || this.closed) return;
    this.degradedNow = true;
    this.report(true, err);
    this.probing ??= this.probe().finally(() => {
      this.probing = undefined;
    });
  }

  private recover(): void {
    if (!this.degradedNow) return;
    this.degradedNow = false;
    this.report(false);
    void this.shared.retryPendingSettles?.().catch(() => undefined);
  }

  private report(active: boolean, err?: unknown): void {
    try {
      if (active) this.onDegraded(true, err);
      else this.onDegraded(false);
    } catch {
      // The callback is a log line and a metric; its failure must not fail admissions.
    }
  }

  /** Waits for the shared limiter to answer a PING; never more than one PING unanswered at a time. */
  private async probe(): Promise<void> {
    let inFlight: Promise<boolean> | undefined;
    while (this.degradedNow && !this.closed) {
      await this.pause(this.probeIntervalMs);
      if (this.closed) return;
      inFlight ??= this.shared.ping().then(
        () => true,
        () => false,
      );
      const answered = await settleWithin(inFlight, this.timeoutMs);
      if (answered.kind !== "done") continue; // still unanswered: wait on the same PING next round
      inFlight = undefined;
      if (answered.value) {
        this.recover();
        return;
      }
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
      this.wakeProbe = done;
    });
  }
}

/**
 * The promise's outcome, or "timeout" when it has not settled within `ms`. On expiry it yields
 * once to I/O (setImmediate) before giving up, so a reply that arrived while the event loop was
 * busy is not mistaken for a slow server.
 */
function settleWithin<T>(promise: Promise<T>, ms: number): Promise<Outcome<T>> {
  return new Promise((resolve) => {
    let finished = false;
    const timer = setTimeout(() => {
      setImmediate(() => {
        if (finished) return;
        finished = true;
        resolve({ kind: "timeout" });
      });
    }, ms);
    promise.then(
      (value) => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        resolve({ kind: "done", value });
      },
      (err: unknown) => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        resolve({ kind: "failed", err });
      },
    );
  });
}
