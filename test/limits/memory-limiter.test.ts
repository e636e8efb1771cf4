import { describe, expect, it } from "vitest";
import { MemoryLimiter } from "../../src/limits/memory-limiter.js";
import { errorOf, key, limiterContract, tenant, ticketOf } from "./limiter-contract.js";

/** A clock the test moves by hand. */
function fakeClock(start = Date.UTC(2025, 10, 22, 12, 0, 0)) {
  let t = start;
  return {
    now: () => t,
    advance: (ms: number) => {
      t += ms;
    },
    set: (ms: number) => {
      t = ms;
    },
  };
}

describe("MemoryLimiter", () => {
  const clock = fakeClock();
  limiterContract({
    create: async ({ windowMs }) => new MemoryLimiter({ now: clock.now, windowMs }),
    advance: async (ms) => clock.advance(ms),
    now: clock.now,
    clockToleranceMs: 0,
    shortWindowMs: 60_000,
  });

  it("keeps an exact sliding window: each admission frees its place one minute after it", async () => {
    const c = fakeClock();
    const limiter = new MemoryLimiter({ now: c.now });
    const subjects = [key("k-slide", { requestsPerMinute: 3 })];
    for (let i = 0; i < 3; i++) {
      ticketOf(await limiter.admit(subjects, { tokens: 1, costUsdNanos: 0n }));
      c.advance(10_000); // admissions at 0 s, 10 s, 20 s
    }
    // now 30 s: the first frees at 60 s
    expect(errorOf(await limiter.admit(subjects, { tokens: 1, costUsdNanos: 0n })).retryAfterMs).toBe(30_000);
    c.advance(29_999);
    errorOf(await limiter.admit(subjects, { tokens: 1, costUsdNanos: 0n }));
    c.advance(1);
    ticketOf(await limiter.admit(subjects, { tokens: 1, costUsdNanos: 0n })); // 60 s
    // The next place frees at 70 s (the admission at 10 s), not at 120 s as a fixed window would say.
    expect(errorOf(await limiter.admit(subjects, { tokens: 1, costUsdNanos: 0n })).retryAfterMs).toBe(10_000);
  });

  it("frees tokens per minute as their one-second buckets leave the window", async () => {
    const c = fakeClock();
    const limiter = new MemoryLimiter({ now: c.now });
    const subjects = [key("k-tpm-slide", { tokensPerMinute: 100 })];
    ticketOf(await limiter.admit(subjects, { tokens: 60, costUsdNanos: 0n }));
    c.advance(30_000);
    ticketOf(await limiter.admit(subjects, { tokens: 40, costUsdNanos: 0n }));
    const refused = errorOf(await limiter.admit(subjects, { tokens: 50, costUsdNanos: 0n }));
    // The 60 tokens of second 0 leave the window when that bucket ends plus a minute: at 61 s.
    expect(refused.retryAfterMs).toBe(31_000);
    c.advance(31_000);
    ticketOf(await limiter.admit(subjects, { tokens: 50, costUsdNanos: 0n }));
  });

  it("starts a new daily budget at UTC midnight and a new monthly one on the 1st", async () => {
    const c = fakeClock(Date.UTC(2025, 10, 30, 23, 59, 0));
    const limiter = new MemoryLimiter({ now: c.now });
    const daily = [key("k-midnight", { budgetUsdNanosPerDay: 100n })];
    const monthly = [tenant("t-month-end", { budgetUsdNanosPerMonth: 100n })];
    ticketOf(await limiter.admit(daily, { tokens: 1, costUsdNanos: 100n }));
    ticketOf(await limiter.admit(monthly, { tokens: 1, costUsdNanos: 100n }));
    expect(errorOf(await limiter.admit(daily, { tokens: 1, costUsdNanos: 1n })).retryAfterMs).toBe(60_000);
    expect(errorOf(await limiter.admit(monthly, { tokens: 1, costUsdNanos: 1n })).retryAfterMs).toBe(60_000);
    c.advance(60_000); // 2025-12-01T00:00:00Z
    ticketOf(await limiter.admit(daily, { tokens: 1, costUsdNanos: 100n }));
    ticketOf(await limiter.admit(monthly, { tokens: 1, costUsdNanos: 100n }));
  });

  it("charges a call that ends after midnight to the day it was admitted", async () => {
    const c = fakeClock(Date.UTC(2025, 10, 22, 23, 59, 59));
    const limiter = new MemoryLimiter({ now: c.now });
    const subjects = [key("k-late", { budgetUsdNanosPerDay: 100n })];
    const ticket = ticketOf(await limiter.admit(subjects, { tokens: 1, costUsdNanos: 10n }));
    c.advance(2_000);
    await ticket.settle({ tokens: 1, costUsdNanos: 90n });
    ticketOf(await limiter.admit(subjects, { tokens: 1, costUsdNanos: 100n })); // the new day is untouched
  });

  it("forgets idle subjects but keeps those with open tickets or spend this period", async () => {
    const c = fakeClock();
    const limiter = new MemoryLimiter({ now: c.now });
    const r = { tokens: 5, costUsdNanos: 5n };
    for (let i = 0; i < 1_000; i++) {
      await ticketOf(await limiter.admit([key(`k-idle-${i}`, { requestsPerMinute: 10, tokensPerMinute: 100 })], r)).settle(r);
    }
    const held = ticketOf(await limiter.admit([key("k-held", { concurrentRequests: 1 })], r));
    await ticketOf(await limiter.admit([key("k-spender", { budgetUsdNanosPerMonth: 100n })], r)).settle(r);
    expect(limiter.trackedSubjects).toBe(1_002);

    c.advance(61_001);
    ticketOf(await limiter.admit([key("k-new", {})], r)); // no limits: tracks nothing, but sweeps
    expect(limiter.trackedSubjects).toBe(2);

    await held.settle({ tokens: 5, costUsdNanos: 5n });
    c.advance(60_000);
    ticketOf(await limiter.admit([key("k-new", {})], r));
    expect(limiter.trackedSubjects).toBe(1); // the spender stays until its month is over
    c.set(Date.UTC(2025, 11, 1));
    ticketOf(await limiter.admit([key("k-new", {})], r));
    expect(limiter.trackedSubjects).toBe(0);
  });

  it("refuses everything for a zero limit, without RetryInfo", async () => {
    const limiter = new MemoryLimiter();
    const err = errorOf(await limiter.admit([key("k-zero", { requestsPerMinute: 0 })], { tokens: 1, costUsdNanos: 0n }));
    expect(err.reason).toBe("RATE_LIMITED");
    expect(err.retryAfterMs).toBeUndefined();
  });
});
