import { createServer } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { createLimiter } from "../../src/limits/index.js";
import type { AdmitResult, LimitSubject, Limiter, Reservation, Settlement } from "../../src/limits/limiter.js";
import { MemoryLimiter } from "../../src/limits/memory-limiter.js";
import { ResilientLimiter, type SharedLimiter } from "../../src/limits/resilient-limiter.js";
import { errorOf, key, ticketOf } from "./limiter-contract.js";

const R: Reservation = { tokens: 10, costUsdNanos: 1_000n };

/** A shared limiter the test can make answer, fail or stall. */
class FakeShared implements SharedLimiter {
  mode: "ok" | "fail" | "stall" = "ok";
  admits = 0;
  pings = 0;
  readonly settled: Settlement[] = [];
  readonly stalled: ((result: AdmitResult) => void)[] = [];

  admit(): Promise<AdmitResult> {
    this.admits += 1;
    if (this.mode === "fail") return Promise.reject(new Error("connection refused"));
    if (this.mode === "stall") return new Promise((resolve) => this.stalled.push(resolve));
    return Promise.resolve(this.grant());
  }

  grant(): AdmitResult {
    return {
      ok: true,
      ticket: {
        settle: async (actual) => {
          this.settled.push(actual);
        },
      },
    };
  }

  ping(): Promise<void> {
    this.pings += 1;
    if (this.mode === "fail") return Promise.reject(new Error("connection refused"));
    if (this.mode === "stall") return new Promise(() => {});
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** A MemoryLimiter that counts the settles of its tickets. */
class CountingLocal implements Limiter {
  readonly inner = new MemoryLimiter();
  settles = 0;
  async admit(subjects: readonly LimitSubject[], reservation: Reservation): Promise<AdmitResult> {
    const result = await this.inner.admit(subjects, reservation);
    if (!result.ok) return result;
    return {
      ok: true,
      ticket: {
        settle: async (actual) => {
          this.settles += 1;
          await result.ticket.settle(actual);
        },
      },
    };
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/** onDegraded that records calls and lets a test await the next one. */
function degradedSpy() {
  const calls: { active: boolean; err: unknown }[] = [];
  let waiters: { active: boolean; resolve: () => void }[] = [];
  return {
    calls,
    onDegraded: (active: boolean, err?: unknown) => {
      calls.push({ active, err });
      const ready = waiters.filter((w) => w.active === active);
      waiters = waiters.filter((w) => w.active !== active);
      for (const w of ready) w.resolve();
    },
    next: (active: boolean) => new Promise<void>((resolve) => waiters.push({ active, resolve })),
  };
}

describe("ResilientLimiter", () => {
  const open: Limiter[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((l) => l.close()));
  });
  function resilient(shared: SharedLimiter, options: { replicaCount?: number; local?: Limiter } = {}) {
    const spy = degradedSpy();
    const limiter = new ResilientLimiter({
      shared,
      local: options.local ?? new MemoryLimiter(),
      replicaCount: options.replicaCount ?? 1,
      onDegraded: spy.onDegraded,
      timeoutMs: 50,
      probeIntervalMs: 10,
    });
    open.push(limiter);
    return { limiter, spy };
  }

  it("uses the shared limiter while it answers", async () => {
    const shared = new FakeShared();
    const { limiter, spy } = resilient(shared);
    for (let i = 0; i < 5; i++) ticketOf(await limiter.admit([key("k", { requestsPerMinute: 1 })], R));
    expect(shared.admits).toBe(5);
    expect(spy.calls).toEqual([]);
  });

  it("falls back to in-process limits divided by the replica count when the shared limiter fails", async () => {
    const shared = new FakeShared();
    shared.mode = "fail";
    const { limiter, spy } = resilient(shared, { replicaCount: 3 });
    const subjects = [key("k-divided", { requestsPerMinute: 10 })];
    const results = [];
    for (let i = 0; i < 10; i++) results.push(await limiter.admit(subjects, R));
    expect(results.filter((r) => r.ok)).toHaveLength(4); // ceil(10 / 3)
    expect(errorOf(results[4] as AdmitResult).quotaViolations[0]?.description).toBe("requests per minute (limit 4)");
    expect(spy.calls).toHaveLength(1);
    expect(spy.calls[0]?.active).toBe(true);
    expect(String(spy.calls[0]?.err)).toContain("connection refused");
    expect(limiter.degraded).toBe(true);
  });

  it("falls back when the shared limiter does not answer within the timeout", async () => {
    const shared = new FakeShared();
    shared.mode = "stall";
    const { limiter, spy } = resilient(shared);
    const started = Date.now();
    ticketOf(await limiter.admit([key("k-stall", { requestsPerMinute: 10 })], R));
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(spy.calls.map((c) => c.active)).toEqual([true]);
    // Degraded: later admissions do not wait on the stalled store.
    ticketOf(await limiter.admit([key("k-stall", { requestsPerMinute: 10 })], R));
    expect(shared.admits).toBe(1);
  });

  it("goes back to the shared limiter when it answers again", async () => {
    const shared = new FakeShared();
    shared.mode = "fail";
    const { limiter, spy } = resilient(shared);
    ticketOf(await limiter.admit([key("k-back", {})], R));
    expect(limiter.degraded).toBe(true);
    const recovered = spy.next(false);
    shared.mode = "ok";
    await recovered;
    expect(limiter.degraded).toBe(false);
    const before = shared.admits;
    ticketOf(await limiter.admit([key("k-back", {})], R));
    expect(shared.admits).toBe(before + 1);
    expect(spy.calls.map((c) => c.active)).toEqual([true, false]);
  });

  it("keeps at most one probe unanswered while the shared limiter stalls", async () => {
    const shared = new FakeShared();
    shared.mode = "stall";
    const { limiter } = resilient(shared);
    ticketOf(await limiter.admit([key("k-probe", {})], R));
    await sleep(300); // thirty probe intervals
    expect(shared.pings).toBe(1);
  });

  it("settles each ticket against the limiter that admitted it", async () => {
    const shared = new FakeShared();
    const local = new CountingLocal();
    const { limiter, spy } = resilient(shared, { local });
    const fromShared = ticketOf(await limiter.admit([key("k-store", { concurrentRequests: 1 })], R));
    shared.mode = "fail";
    const fromLocal = ticketOf(await limiter.admit([key("k-store", { concurrentRequests: 1 })], R));
    const recovered = spy.next(false);
    shared.mode = "ok";
    await recovered;
    await fromLocal.settle({ tokens: 3, costUsdNanos: 3n });
    await fromShared.settle({ tokens: 5, costUsdNanos: 5n });
    expect(local.settles).toBe(1);
    expect(shared.settled).toEqual([{ tokens: 5, costUsdNanos: 5n }]);
  });

  it("settles a shared admission that answered after the timeout, with the call's true amounts", async () => {
    const shared = new FakeShared();
    shared.mode = "stall";
    const { limiter } = resilient(shared);
    const ticket = ticketOf(await limiter.admit([key("k-late", {})], R));
    const late = shared.stalled[0];
    expect(late).toBeDefined();
    late?.(shared.grant());
    await ticket.settle({ tokens: 7, costUsdNanos: 7n });
    await Promise.resolve();
    expect(shared.settled).toEqual([{ tokens: 7, costUsdNanos: 7n }]);
  });

  it("keeps admitting when onDegraded throws", async () => {
    const shared = new FakeShared();
    shared.mode = "fail";
    const limiter = new ResilientLimiter({
      shared,
      local: new MemoryLimiter(),
      replicaCount: 1,
      onDegraded: () => {
        throw new Error("logger broke");
      },
      timeoutMs: 50,
      probeIntervalMs: 10,
    });
    open.push(limiter);
    ticketOf(await limiter.admit([key("k-throw", { requestsPerMinute: 1 })], R));
  });
});

describe("createLimiter", () => {
  it("limits in process without a Redis URL", async () => {
    const limiter = await createLimiter({ replicaCount: 3, onDegraded: () => {} });
    try {
      expect(limiter).toBeInstanceOf(MemoryLimiter);
      const subjects = [key("k-mem", { requestsPerMinute: 2 })];
      ticketOf(await limiter.admit(subjects, R));
      ticketOf(await limiter.admit(subjects, R));
      errorOf(await limiter.admit(subjects, R)); // not divided: one process holds the whole limit
    } finally {
      await limiter.close();
    }
  });

  it("starts degraded, with limits divided by the replica count, when Redis is unreachable", async () => {
    // A port that was free a moment ago and has nobody listening.
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, "127.0.0.1", () => {
        const address = s.address();
        s.close(() => resolve(typeof address === "object" && address !== null ? address.port : 1));
      });
    });
    const spy = degradedSpy();
    const started = Date.now();
    const limiter = await createLimiter({ redisUrl: `redis://127.0.0.1:${port}`, replicaCount: 2, onDegraded: spy.onDegraded });
    try {
      expect(Date.now() - started).toBeLessThan(3_000);
      expect(spy.calls.map((c) => c.active)).toEqual([true]);
      const subjects = [key("k-unreachable", { requestsPerMinute: 5 })];
      const results = [];
      for (let i = 0; i < 5; i++) results.push(await limiter.admit(subjects, R));
      expect(results.filter((r) => r.ok)).toHaveLength(3); // ceil(5 / 2)
    } finally {
      await limiter.close();
    }
  });
});
