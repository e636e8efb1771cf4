import { describe, expect, it } from "vitest";
import { SingleFlight, type FlightContext } from "../../src/cache/single-flight.js";
import { LlmError } from "../../src/errors/llm-error.js";

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
}
function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Resolves with the signal's reason when it fires. */
function aborted(signal: AbortSignal): Promise<unknown> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve(signal.reason);
    else signal.addEventListener("abort", () => resolve(signal.reason), { once: true });
  });
}

describe("SingleFlight", () => {
  it("runs 100 concurrent identical calls once and gives every caller the value", async () => {
    const flight = new SingleFlight<string>();
    const gate = deferred<string>();
    let calls = 0;
    const fn = () => {
      calls++;
      return gate.promise;
    };
    const results = Array.from({ length: 100 }, () => flight.run("k", fn));
    expect(flight.size).toBe(1);
    gate.resolve("answer");
    const settled = await Promise.all(results);
    expect(calls).toBe(1);
    expect(settled.every((r) => r.value === "answer")).toBe(true);
    expect(settled.filter((r) => !r.shared)).toHaveLength(1);
    expect(flight.joins).toBe(99);
    expect(flight.size).toBe(0);
  });

  it("runs different keys separately", async () => {
    const flight = new SingleFlight<string>();
    const [a, b] = await Promise.all([flight.run("a", async () => "A"), flight.run("b", async () => "B")]);
    expect([a.value, b.value, a.shared, b.shared]).toEqual(["A", "B", false, false]);
    expect(flight.joins).toBe(0);
  });

  it("gives the error to every waiter and forgets the key, so the next call runs again", async () => {
    const flight = new SingleFlight<string>();
    const gate = deferred<string>();
    let calls = 0;
    const fn = () => {
      calls++;
      return gate.promise;
    };
    const waiters = Array.from({ length: 5 }, () => flight.run("k", fn));
    const failure = new LlmError("PROVIDER_UNAVAILABLE", "upstream returned 503");
    gate.reject(failure);
    const outcomes = await Promise.allSettled(waiters);
    expect(outcomes.every((o) => o.status === "rejected" && o.reason === failure)).toBe(true);
    expect(flight.size).toBe(0);
    await expect(flight.run("k", async () => "recovered")).resolves.toEqual({ value: "recovered", shared: false });
    expect(calls).toBe(1);
  });

  it("turns a synchronous throw in fn into a rejection for every waiter", async () => {
    const flight = new SingleFlight<string>();
    const boom = new Error("boom");
    const fn = (): Promise<string> => {
      throw boom;
    };
    const outcomes = await Promise.allSettled([flight.run("k", fn), flight.run("k", fn)]);
    expect(outcomes.map((o) => o.status === "rejected" && o.reason)).toEqual([boom, boom]);
  });

  it("keeps the work going for the others when the caller that started it cancels", async () => {
    const flight = new SingleFlight<string>();
    const gate = deferred<string>();
    let work: FlightContext | undefined;
    const fn = (ctx: FlightContext) => {
      work = ctx;
      return gate.promise;
    };
    const leader = new AbortController();
    const first = flight.run("k", fn, { signal: leader.signal });
    const second = flight.run("k", fn, { signal: new AbortController().signal });
    const third = flight.run("k", fn);
    leader.abort();
    await expect(first).rejects.toMatchObject({ reason: "CANCELLED" });
    expect(work?.signal.aborted).toBe(false);
    gate.resolve("still wanted");
    await expect(second).resolves.toEqual({ value: "still wanted", shared: true });
    await expect(third).resolves.toEqual({ value: "still wanted", shared: true });
  });

  it("aborts the work when every caller has gone, and starts afresh for the next one", async () => {
    const flight = new SingleFlight<string>();
    const callers = [new AbortController(), new AbortController()];
    let work: FlightContext | undefined;
    const waiting = callers.map((c) =>
      flight.run(
        "k",
        (ctx) => {
          work = ctx;
          return aborted(ctx.signal).then((reason) => Promise.reject(reason));
        },
        { signal: c.signal },
      ),
    );
    await Promise.resolve(); // fn starts on a microtask
    for (const c of callers) c.abort();
    await Promise.allSettled(waiting);
    const reason = await aborted((work as FlightContext).signal);
    expect(reason).toBeInstanceOf(LlmError);
    expect((reason as LlmError).reason).toBe("CANCELLED");
    expect(flight.size).toBe(0);
    await expect(flight.run("k", async () => "fresh")).resolves.toEqual({ value: "fresh", shared: false });
  });

  it("rejects a caller whose signal has already fired without starting anything", async () => {
    const flight = new SingleFlight<string>();
    let calls = 0;
    const gone = new AbortController();
    gone.abort();
    await expect(
      flight.run(
        "k",
        async () => {
          calls++;
          return "x";
        },
        { signal: gone.signal },
      ),
    ).rejects.toMatchObject({ reason: "CANCELLED" });
    expect(calls).toBe(0);
    expect(flight.size).toBe(0);
  });

  it("gives the work the latest deadline among its callers, shrinking when that caller leaves", async () => {
    const flight = new SingleFlight<string>();
    const gate = deferred<string>();
    let work: FlightContext | undefined;
    const fn = (ctx: FlightContext) => {
      work = ctx;
      return gate.promise;
    };
    const now = Date.now();
    const late = new AbortController();
    const first = flight.run("k", fn, { deadline: now + 10_000 });
    const second = flight.run("k", fn, { deadline: now + 20_000, signal: late.signal });
    await Promise.resolve();
    expect(work?.deadline).toBe(now + 20_000);
    late.abort();
    await expect(second).rejects.toMatchObject({ reason: "CANCELLED" });
    expect(work?.deadline).toBe(now + 10_000);
    gate.resolve("done");
    await expect(first).resolves.toEqual({ value: "done", shared: false });
  });

  it("aborts the work with PROVIDER_TIMEOUT at the longest waiter's deadline, not the first's", async () => {
    const flight = new SingleFlight<string>();
    let work: FlightContext | undefined;
    const fn = (ctx: FlightContext) => {
      work = ctx;
      return aborted(ctx.signal).then((reason) => Promise.reject(reason));
    };
    const start = Date.now();
    const first = flight.run("k", fn, { deadline: start + 20 });
    const second = flight.run("k", fn, { deadline: start + 120 });
    const outcomes = await Promise.allSettled([first, second]);
    const elapsed = Date.now() - start;
    expect(outcomes.map((o) => o.status === "rejected" && (o.reason as LlmError).reason)).toEqual(["PROVIDER_TIMEOUT", "PROVIDER_TIMEOUT"]);
    expect(work?.signal.aborted).toBe(true);
    expect(elapsed).toBeGreaterThanOrEqual(115);
    expect(flight.size).toBe(0);
  });
});
