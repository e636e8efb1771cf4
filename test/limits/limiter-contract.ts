/**
 * The behaviour every Limiter must have, run against the in-process limiter (fake clock) and the
 * Redis limiter (real server, real time with short windows).
 */
import { afterEach, expect, it } from "vitest";
import type { Limits } from "../../src/core/types.js";
import { LlmError } from "../../src/errors/llm-error.js";
import type { AdmitResult, LimitSubject, Limiter, Reservation, Ticket } from "../../src/limits/limiter.js";

export interface LimiterHarness {
  /** A limiter with fresh state whose rate windows last `windowMs`. */
  create(options: { windowMs: number }): Promise<Limiter>;
  /** Lets `ms` of the limiter's time pass (a fake clock's step, or a real wait). */
  advance(ms: number): Promise<void>;
  /** The limiter's clock (for budget RetryInfo). */
  now(): number;
  /** How far the limiter's clock may be from now() (the Redis server's clock vs ours). */
  clockToleranceMs: number;
  /** A window short enough to wait out in a test. */
  shortWindowMs: number;
}

const MINUTE = 60_000;
const reserve = (tokens: number, cost: bigint): Reservation => ({ tokens, costUsdNanos: cost });
const ONE: Reservation = reserve(10, 1_000n);

export function key(id: string, limits: Limits): LimitSubject {
  return { scope: "key", id, limits };
}
export function tenant(id: string, limits: Limits): LimitSubject {
  return { scope: "tenant", id, limits };
}

export function ticketOf(result: AdmitResult): Ticket {
  if (!result.ok) throw new Error(`expected an admission, got ${result.error.reason}: ${result.error.message}`);
  return result.ticket;
}
export function errorOf(result: AdmitResult): LlmError {
  if (result.ok) throw new Error("expected a refusal, got an admission");
  expect(result.error).toBeInstanceOf(LlmError);
  return result.error;
}

function msUntilNextUtcDay(now: number): number {
  return (Math.floor(now / 86_400_000) + 1) * 86_400_000 - now;
}
function msUntilNextUtcMonth(now: number): number {
  const d = new Date(now);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1) - now;
}

export function limiterContract(harness: LimiterHarness): void {
  const open: Limiter[] = [];
  const create = async (windowMs = MINUTE) => {
    const limiter = await harness.create({ windowMs });
    open.push(limiter);
    return limiter;
  };
  afterEach(async () => {
    await Promise.all(open.splice(0).map((l) => l.close()));
  });

  it("admits exactly 50 of 200 concurrent calls against a 50-per-minute key", async () => {
    const limiter = await create();
    const subjects = [key("k-rpm", { requestsPerMinute: 50 })];
    const results = await Promise.all(Array.from({ length: 200 }, () => limiter.admit(subjects, ONE)));
    expect(results.filter((r) => r.ok)).toHaveLength(50);
    const refusals = results.filter((r) => !r.ok).map(errorOf);
    expect(refusals).toHaveLength(150);
    expect(new Set(refusals.map((e) => e.reason))).toEqual(new Set(["RATE_LIMITED"]));
  });

  it("admits again once the window has passed", async () => {
    const windowMs = harness.shortWindowMs;
    const limiter = await create(windowMs);
    const subjects = [key("k-window", { requestsPerMinute: 3 })];
    for (let i = 0; i < 3; i++) ticketOf(await limiter.admit(subjects, ONE));
    const refused = errorOf(await limiter.admit(subjects, ONE));
    expect(refused.retryAfterMs).toBeGreaterThan(0);
    expect(refused.retryAfterMs).toBeLessThanOrEqual(windowMs);
    await harness.advance((refused.retryAfterMs ?? windowMs) + 5);
    ticketOf(await limiter.admit(subjects, ONE));
  });

  it("releases a concurrency slot on settle, once", async () => {
    const limiter = await create();
    const subjects = [key("k-conc", { concurrentRequests: 2 })];
    const first = ticketOf(await limiter.admit(subjects, ONE));
    ticketOf(await limiter.admit(subjects, ONE));
    const refused = errorOf(await limiter.admit(subjects, ONE));
    expect(refused.reason).toBe("RATE_LIMITED");
    expect(refused.metadata["limit"]).toBe("concurrent_requests");
    expect(refused.retryAfterMs).toBeGreaterThan(0);

    await first.settle({ tokens: 10, costUsdNanos: 1_000n });
    ticketOf(await limiter.admit(subjects, ONE));
    // A second settle of the same ticket frees nothing more.
    await first.settle({ tokens: 10, costUsdNanos: 1_000n });
    errorOf(await limiter.admit(subjects, ONE));
  });

  it("reserves tokens per minute and settles them to the true count", async () => {
    const limiter = await create();
    const subjects = [key("k-tpm", { tokensPerMinute: 1_000 })];
    const big = ticketOf(await limiter.admit(subjects, reserve(600, 0n)));
    const refused = errorOf(await limiter.admit(subjects, reserve(600, 0n)));
    expect(refused.metadata["limit"]).toBe("tokens_per_minute");
    expect(refused.retryAfterMs).toBeGreaterThan(0);

    await big.settle({ tokens: 100, costUsdNanos: 0n }); // 100 used
    ticketOf(await limiter.admit(subjects, reserve(600, 0n))); // 700
    errorOf(await limiter.admit(subjects, reserve(400, 0n))); // would be 1 100
    ticketOf(await limiter.admit(subjects, reserve(300, 0n))); // exactly 1 000
    errorOf(await limiter.admit(subjects, reserve(1, 0n)));
  });

  it("refuses a token reservation larger than the whole limit without RetryInfo", async () => {
    const limiter = await create();
    const refused = errorOf(await limiter.admit([key("k-tpm-big", { tokensPerMinute: 100 })], reserve(101, 0n)));
    expect(refused.reason).toBe("RATE_LIMITED");
    expect(refused.retryAfterMs).toBeUndefined();
  });

  it("never lets 50 parallel calls against a budget that fits 10 spend more than the budget plus one reservation", async () => {
    const limiter = await create();
    const cost = 7_000_000n; // 0.007 USD
    const budget = cost * 10n;
    const subjects = [key("k-budget", { budgetUsdNanosPerDay: budget })];
    let spent = 0n;
    const outcomes = await Promise.all(
      Array.from({ length: 50 }, async () => {
        const result = await limiter.admit(subjects, reserve(100, cost));
        if (!result.ok) return result.error;
        await result.ticket.settle({ tokens: 100, costUsdNanos: cost });
        spent += cost;
        return "admitted";
      }),
    );
    expect(spent).toBeLessThanOrEqual(budget + cost);
    expect(outcomes.filter((o) => o === "admitted").length).toBeGreaterThanOrEqual(9);
    const refusals = outcomes.filter((o): o is LlmError => o instanceof LlmError);
    expect(refusals.length).toBeGreaterThanOrEqual(39);
    expect(new Set(refusals.map((e) => e.reason))).toEqual(new Set(["BUDGET_EXCEEDED"]));
  });

  it("settles a budget reservation to the actual cost", async () => {
    const limiter = await create();
    const subjects = [key("k-budget-settle", { budgetUsdNanosPerDay: 10_000n })];
    const first = ticketOf(await limiter.admit(subjects, reserve(1, 10_000n)));
    errorOf(await limiter.admit(subjects, reserve(1, 1n)));
    await first.settle({ tokens: 1, costUsdNanos: 4_000n });
    ticketOf(await limiter.admit(subjects, reserve(1, 6_000n))); // 4 000 + 6 000 = the budget
    errorOf(await limiter.admit(subjects, reserve(1, 1n)));
  });

  it("applies a tenant's limit across two keys of the tenant", async () => {
    const limiter = await create();
    const team = tenant("t-shared", { requestsPerMinute: 3 });
    const a = [key("k-a", { requestsPerMinute: 10 }), team];
    const b = [key("k-b", { requestsPerMinute: 10 }), team];
    ticketOf(await limiter.admit(a, ONE));
    ticketOf(await limiter.admit(a, ONE));
    ticketOf(await limiter.admit(b, ONE));
    const refused = errorOf(await limiter.admit(b, ONE));
    expect(refused.quotaViolations).toEqual([{ subject: "tenant:t-shared", description: "requests per minute (limit 3)" }]);
  });

  it("consumes nothing from the key when the tenant refuses (all-or-nothing)", async () => {
    const limiter = await create();
    const own = key("k-aon", {
      requestsPerMinute: 3,
      tokensPerMinute: 300,
      concurrentRequests: 2,
      budgetUsdNanosPerDay: 300n,
      budgetUsdNanosPerMonth: 300n,
    });
    const strict = tenant("t-strict", { requestsPerMinute: 1 });
    const open = tenant("t-open", {});
    const r = reserve(100, 100n);
    const first = ticketOf(await limiter.admit([own, strict], r));
    for (let i = 0; i < 5; i++) {
      const refused = errorOf(await limiter.admit([own, strict], r));
      expect(refused.quotaViolations.map((v) => v.subject)).toEqual(["tenant:t-strict"]);
    }
    // Had the refused calls taken anything, the key would be out of requests, tokens, slots or budget here.
    ticketOf(await limiter.admit([own, open], r));
    expect(errorOf(await limiter.admit([own, open], r)).metadata["limit"]).toBe("concurrent_requests");
    await first.settle({ tokens: 100, costUsdNanos: 100n });
    ticketOf(await limiter.admit([own, open], r));
    const full = errorOf(await limiter.admit([own, open], r));
    expect(full.quotaViolations.map((v) => v.description).sort()).toEqual([
      "USD budget per UTC day (limit 0.0000003 USD)",
      "USD budget per UTC month (limit 0.0000003 USD)",
      "concurrent requests (limit 2)",
      "requests per minute (limit 3)",
      "tokens per minute (limit 300)",
    ]);
    expect(full.reason).toBe("BUDGET_EXCEEDED");
  });

  it("refuses with a QuotaFailure naming the limit and RetryInfo for when the window frees", async () => {
    const limiter = await create();
    const subjects = [key("k-info", { requestsPerMinute: 2 })];
    ticketOf(await limiter.admit(subjects, ONE));
    ticketOf(await limiter.admit(subjects, ONE));
    const err = errorOf(await limiter.admit(subjects, ONE));
    expect(err.reason).toBe("RATE_LIMITED");
    expect(err.quotaViolations).toEqual([{ subject: "key:k-info", description: "requests per minute (limit 2)" }]);
    expect(err.metadata).toMatchObject({ limit: "requests_per_minute", subject: "key:k-info", limit_value: "2" });
    expect(err.retryAfterMs).toBeGreaterThan(MINUTE - 5_000);
    expect(err.retryAfterMs).toBeLessThanOrEqual(MINUTE);
    expect(err.message).toContain("key:k-info");
  });

  it("refuses a spent daily budget until the next UTC day, and a monthly one until the next month", async () => {
    const limiter = await create();
    const day = [key("k-day", { budgetUsdNanosPerDay: 1_500_000_000n })];
    ticketOf(await limiter.admit(day, reserve(1, 1_000_000_000n)));
    const dayErr = errorOf(await limiter.admit(day, reserve(1, 1_000_000_000n)));
    expect(dayErr.reason).toBe("BUDGET_EXCEEDED");
    expect(dayErr.quotaViolations).toEqual([{ subject: "key:k-day", description: "USD budget per UTC day (limit 1.5 USD)" }]);
    expect(dayErr.metadata["limit"]).toBe("budget_usd_per_day");
    expect(Math.abs((dayErr.retryAfterMs ?? 0) - msUntilNextUtcDay(harness.now()))).toBeLessThanOrEqual(harness.clockToleranceMs);

    const month = [tenant("t-month", { budgetUsdNanosPerMonth: 2_000_000_000n })];
    ticketOf(await limiter.admit(month, reserve(1, 2_000_000_000n)));
    const monthErr = errorOf(await limiter.admit(month, reserve(1, 1n)));
    expect(monthErr.metadata["limit"]).toBe("budget_usd_per_month");
    expect(Math.abs((monthErr.retryAfterMs ?? 0) - msUntilNextUtcMonth(harness.now()))).toBeLessThanOrEqual(harness.clockToleranceMs);

    // A reservation above the whole budget cannot be waited out.
    expect(errorOf(await limiter.admit(day, reserve(1, 1_500_000_001n))).retryAfterMs).toBeUndefined();
  });

  it("admits any number of calls for subjects without limits", async () => {
    const limiter = await create();
    const subjects = [key("k-free", {}), tenant("t-free", {})];
    const results = await Promise.all(Array.from({ length: 100 }, () => limiter.admit(subjects, ONE)));
    expect(results.every((r) => r.ok)).toBe(true);
  });
}
