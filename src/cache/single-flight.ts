import { abortReason } from "../core/abort.js";
import { LlmError } from "../errors/llm-error.js";

/**
 * What the shared work runs under. `signal` belongs to the flight, not to any caller; `deadline`
 * is a live value (the latest deadline among the callers still waiting), so code that re-reads it
 * per attempt — the router does — sees it grow when a caller with more time joins. The object has
 * the `{ signal, deadline }` shape the router takes as its options.
 */
export interface FlightContext {
  readonly signal: AbortSignal;
  readonly deadline: number;
}

/** One caller's stake in a flight. */
export interface FlightWaiter {
  /** The caller's own cancellation: it stops waiting (rejecting with abortReason) at once. */
  signal?: AbortSignal;
  /** The caller's deadline, ms since the epoch; absent means no deadline of its own. */
  deadline?: number;
}

export interface FlightResult<T> {
  value: T;
  /** True when this caller joined work another caller started. */
  shared: boolean;
}

interface Flight<T> {
  readonly controller: AbortController;
  readonly waiters: Set<Required<Pick<FlightWaiter, "deadline">>>;
  deadline: number;
  timer: NodeJS.Timeout | undefined;
  settled: boolean;
  readonly promise: Promise<T>;
}

/**
 * Identical concurrent calls run once: the first caller for a key starts `fn`, later callers with
 * the same key join it, and every one of them gets the value or the error. The entry goes away
 * when the work settles, so the next call starts afresh (the response cache serves repeats).
 *
 * Cancellation. The shared work is not tied to the caller that happened to start it: it runs
 * under the flight's own AbortController. A caller whose signal fires stops waiting at once (it
 * gets its own CANCELLED or deadline error) and leaves; the work goes on for the others. Only
 * when every caller has left is the work aborted (reason CANCELLED) and the entry dropped, so the
 * upstream call is not paid for when nobody wants the answer. The flight's deadline is the
 * latest deadline among the callers still waiting; the work is aborted (PROVIDER_TIMEOUT) when it
 * passes, and the deadline shrinks when the caller holding it leaves. An aborted flight is removed
 * at once, so a newcomer never joins work that is already doomed.
 */
export class SingleFlight<T> {
  private readonly flights = new Map<string, Flight<T>>();
  private joined = 0;
  private readonly now: () => number;

  constructor(options: { now?: () => number } = {}) {
    this.now = options.now ?? Date.now;
  }

  /** Callers that joined work already in flight instead of starting it, since creation. */
  get joins(): number {
    return this.joined;
  }

  /** Keys with work in flight now. */
  get size(): number {
    return this.flights.size;
  }

  run(key: string, fn: (flight: FlightContext) => Promise<T>, waiter: FlightWaiter = {}): Promise<FlightResult<T>> {
    if (waiter.signal?.aborted) return Promise.reject(abortReason(waiter.signal));
    const existing = this.flights.get(key);
    if (existing) this.joined++;
    const flight = existing ?? this.start(key, fn, waiter.deadline ?? Infinity);
    return this.wait(key, flight, waiter, existing !== undefined);
  }

  private start(key: string, fn: (flight: FlightContext) => Promise<T>, deadline: number): Flight<T> {
    const controller = new AbortController();
    let outcome!: { resolve: (value: T) => void; reject: (err: unknown) => void };
    const flight: Flight<T> = {
      controller,
      waiters: new Set(),
      deadline,
      timer: undefined,
      settled: false,
      promise: new Promise<T>((resolve, reject) => {
        outcome = { resolve, reject };
      }),
    };
    const context: FlightContext = {
      signal: controller.signal,
      get deadline() {
        return flight.deadline;
      },
    };
    const settle = () => {
      flight.settled = true;
      clearTimeout(flight.timer);
      if (this.flights.get(key) === flight) this.flights.delete(key);
    };
    // Also marks a rejection handled when every waiter has gone before it settles.
    flight.promise.then(settle, settle);
    this.flights.set(key, flight);
    this.armTimer(key, flight);
    // fn runs on a later microtask, so a synchronous throw in it is a rejection like any other,
    // and it is not started at all when the flight was aborted before it got going.
    Promise.resolve()
      .then(() => (controller.signal.aborted ? Promise.reject(abortReason(controller.signal)) : fn(context)))
      .then(outcome.resolve, outcome.reject);
    return flight;
  }

  private wait(key: string, flight: Flight<T>, waiter: FlightWaiter, shared: boolean): Promise<FlightResult<T>> {
    const stake = { deadline: waiter.deadline ?? Infinity };
    flight.waiters.add(stake);
    if (stake.deadline > flight.deadline) {
      flight.deadline = stake.deadline;
      this.armTimer(key, flight);
    }
    return new Promise<FlightResult<T>>((resolve, reject) => {
      const signal = waiter.signal;
      const onAbort = () => {
        this.leave(key, flight, stake);
        reject(abortReason(signal as AbortSignal));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      flight.promise.then(
        (value) => {
          signal?.removeEventListener("abort", onAbort);
          flight.waiters.delete(stake);
          resolve({ value, shared });
        },
        (err: unknown) => {
          signal?.removeEventListener("abort", onAbort);
          flight.waiters.delete(stake);
          reject(err);
        },
      );
    });
  }

  private leave(key: string, flight: Flight<T>, stake: { deadline: number }): void {
    if (!flight.waiters.delete(stake) || flight.settled) return;
    if (flight.waiters.size === 0) {
      this.abort(key, flight, new LlmError("CANCELLED", "every caller waiting for this generation has gone"));
      return;
    }
    if (stake.deadline >= flight.deadline) {
      flight.deadline = Math.max(...Array.from(flight.waiters, (w) => w.deadline));
      this.armTimer(key, flight);
    }
  }

  private armTimer(key: string, flight: Flight<T>): void {
    clearTimeout(flight.timer);
    flight.timer = undefined;
    if (!Number.isFinite(flight.deadline)) return;
    const fire = () => this.abort(key, flight, new LlmError("PROVIDER_TIMEOUT", "deadline exceeded"));
    const left = flight.deadline - this.now();
    if (left <= 0) {
      fire();
      return;
    }
    flight.timer = setTimeout(fire, left);
    flight.timer.unref();
  }

  private abort(key: string, flight: Flight<T>, reason: LlmError): void {
    if (flight.settled || flight.controller.signal.aborted) return;
    clearTimeout(flight.timer);
    if (this.flights.get(key) === flight) this.flights.delete(key);
    flight.controller.abort(reason);
  }
}
