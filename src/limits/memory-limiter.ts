import type { Limits } from "../core/types.js";
import type { AdmitResult, LimitSubject, Limiter, Reservation, Settlement, Ticket } from "./limiter.js";
import { refusalError, subjectName, type LimitViolation } from "./limit-refusal.js";
import { nextUtcDayStart, nextUtcMonthStart, utcDayNumber, utcMonthNumber } from "./utc-calendar.js";

export interface MemoryLimiterOptions {
  /** Wall clock in ms since the epoch (budgets follow the UTC calendar). Default Date.now. */
  now?: () => number;
  /** Length of the rate windows. 60 000 (a minute) outside tests. */
  windowMs?: number;
  /** The RetryInfo hint when every concurrency slot is taken. Default 1 s. */
  concurrencyRetryAfterMs?: number;
}

export const DEFAULT_WINDOW_MS = 60_000;
export const DEFAULT_CONCURRENCY_RETRY_AFTER_MS = 1_000;
/** Tokens per minute are counted in this many buckets per window (1 s buckets for a minute). */
export const TOKEN_BUCKETS_PER_WINDOW = 60;

interface BudgetBucket {
  /** The UTC day or month number the spend belongs to. */
  period: number;
  /** Settled spend plus the reservations of calls not yet settled, in USD nanos. */
  committed: bigint;
}

/** Everything one key or tenant has used; a dimension is tracked only while its limit is set. */
class SubjectState {
  /** Admission instants inside the window, ascending: a sliding window log (exact). */
  readonly requests: number[] = [];
  /** Token bucket index → tokens reserved or settled in it. */
  readonly tokenBuckets = new Map<number, number>();
  /** Concurrency slots held. */
  active = 0;
  /** Tickets not settled yet; a state with any is never evicted. */
  outstanding = 0;
  day: BudgetBucket = { period: -1, committed: 0n };
  month: BudgetBucket = { period: -1, committed: 0n };
}

/** What one admission took from one subject, to be given back or corrected on settle. */
interface Hold {
  state: SubjectState;
  tokenBucket: number | undefined;
  slot: boolean;
  dayPeriod: number | undefined;
  monthPeriod: number | undefined;
}

/**
 * The in-process limiter: requests per minute as an exact sliding window log, concurrency as an
 * exact count of unsettled tickets, tokens per minute as a sliding window of 1/60-window buckets
 * (reserve, then settle to the true count), and USD budgets per UTC day and month as committed
 * spend (settled spend + open reservations). A call is refused when committed + its reservation
 * would pass the budget, so concurrent calls never jointly commit more than the budget; only a
 * call whose true cost exceeds its reservation can push spend past it, and only by that excess.
 * Admission is synchronous, so it is atomic in process and all-or-nothing across subjects.
 */
export class MemoryLimiter implements Limiter {
  private readonly now: () => number;
  private readonly windowMs: number;
  private readonly bucketMs: number;
  private readonly concurrencyRetryAfterMs: number;
  private readonly states = new Map<string, SubjectState>();
  private lastSweep: number;

  constructor(options: MemoryLimiterOptions = {}) {
    this.now = options.now ?? Date.now;
    this.windowMs = options.windowMs ?? DEFAULT_WINDOW_MS;
    if (!(this.windowMs > 0)) throw new Error("windowMs must be positive");
    this.bucketMs = Math.max(1, Math.floor(this.windowMs / TOKEN_BUCKETS_PER_WINDOW));
    this.concurrencyRetryAfterMs = options.concurrencyRetryAfterMs ?? DEFAULT_CONCURRENCY_RETRY_AFTER_MS;
    this.lastSweep = this.now();
  }

  /** How many subjects hold state now (for tests and metrics). */
  get trackedSubjects(): number {
    return this.states.size;
  }

  admit(subjects: readonly LimitSubject[], reservation: Reservation): Promise<AdmitResult> {
    return Promise.resolve(this.admitNow(subjects, reservation));
  }

  close(): Promise<void> {
    this.states.clear();
    return Promise.resolve();
  }

  private admitNow(subjects: readonly LimitSubject[], reservation: Reservation): AdmitResult {
    const now = this.now();
    this.maybeSweep(now);
    const tokens = Math.max(0, Math.ceil(reservation.tokens));
    const cost = reservation.costUsdNanos > 0n ? reservation.costUsdNanos : 0n;

    const limited = subjects.filter((s) => hasAnyLimit(s.limits));
    const violations: LimitViolation[] = [];
    for (const subject of limited) {
      // A subject with no state yet has used nothing: only a zero limit or an oversized reservation refuses.
      const state = this.states.get(subjectName(subject)) ?? new SubjectState();
      violations.push(...this.check(subject, state, now, tokens, cost));
    }
    if (violations.length > 0) return { ok: false, error: refusalError(violations) };

    const holds = limited.map((subject) => this.take(subject, now, tokens, cost));
    return { ok: true, ticket: this.ticket(holds, tokens, cost) };
  }

  private check(subject: LimitSubject, state: SubjectState, now: number, tokens: number, cost: bigint): LimitViolation[] {
    const l = subject.limits;
    const out: LimitViolation[] = [];
    if (l.concurrentRequests !== undefined && state.active + 1 > l.concurrentRequests) {
      out.push({
        subject,
        kind: "concurrent_requests",
        retryAfterMs: l.concurrentRequests > 0 ? this.concurrencyRetryAfterMs : undefined,
      });
    }
    if (l.requestsPerMinute !== undefined) {
      this.pruneRequests(state, now);
      const limit = l.requestsPerMinute;
      if (state.requests.length + 1 > limit) {
        // The call fits once all but limit-1 of the logged admissions have left the window.
        const freeing = state.requests[state.requests.length - limit];
        out.push({
          subject,
          kind: "requests_per_minute",
          retryAfterMs: limit > 0 && freeing !== undefined ? freeing + this.windowMs - now : undefined,
        });
      }
    }
    if (l.tokensPerMinute !== undefined) {
      this.pruneTokens(state, now);
      const limit = l.tokensPerMinute;
      let used = 0;
      for (const v of state.tokenBuckets.values()) used += v;
      if (used + tokens > limit) {
        out.push({ subject, kind: "tokens_per_minute", retryAfterMs: this.tokenWait(state, now, used + tokens - limit, tokens, limit) });
      }
    }
    if (l.budgetUsdNanosPerDay !== undefined) {
      const committed = state.day.period === utcDayNumber(now) ? state.day.committed : 0n;
      if (committed + cost > l.budgetUsdNanosPerDay) {
        out.push({
          subject,
          kind: "budget_usd_per_day",
          retryAfterMs: cost <= l.budgetUsdNanosPerDay ? nextUtcDayStart(now) - now : undefined,
        });
      }
    }
    if (l.budgetUsdNanosPerMonth !== undefined) {
      const committed = state.month.period === utcMonthNumber(now) ? state.month.committed : 0n;
      if (committed + cost > l.budgetUsdNanosPerMonth) {
        out.push({
          subject,
          kind: "budget_usd_per_month",
          retryAfterMs: cost <= l.budgetUsdNanosPerMonth ? nextUtcMonthStart(now) - now : undefined,
        });
      }
    }
    return out;
  }

  /** When enough token buckets leave the window to free `needed` tokens; undefined when nothing can. */
  private tokenWait(state: SubjectState, now: number, needed: number, tokens: number, limit: number): number | undefined {
    if (tokens > limit) return undefined;
    const buckets = [...state.tokenBuckets.entries()].sort((a, b) => a[0] - b[0]);
    let freed = 0;
    for (const [index, value] of buckets) {
      freed += value;
      if (freed >= needed) return this.bucketExpiry(index) - now;
    }
    return undefined;
  }

  private take(subject: LimitSubject, now: number, tokens: number, cost: bigint): Hold {
    const name = subjectName(subject);
    let state = this.states.get(name);
    if (state === undefined) {
      state = new SubjectState();
      this.states.set(name, state);
    }
    const l = subject.limits;
    const hold: Hold = { state, tokenBucket: undefined, slot: false, dayPeriod: undefined, monthPeriod: undefined };
    state.outstanding += 1;
    if (l.concurrentRequests !== undefined) {
      state.active += 1;
      hold.slot = true;
    }
    if (l.requestsPerMinute !== undefined) state.requests.push(now);
    if (l.tokensPerMinute !== undefined) {
      const index = Math.floor(now / this.bucketMs);
      state.tokenBuckets.set(index, (state.tokenBuckets.get(index) ?? 0) + tokens);
      hold.tokenBucket = index;
    }
    if (l.budgetUsdNanosPerDay !== undefined) {
      const period = utcDayNumber(now);
      if (state.day.period !== period) state.day = { period, committed: 0n };
      state.day.committed += cost;
      hold.dayPeriod = period;
    }
    if (l.budgetUsdNanosPerMonth !== undefined) {
      const period = utcMonthNumber(now);
      if (state.month.period !== period) state.month = { period, committed: 0n };
      state.month.committed += cost;
      hold.monthPeriod = period;
    }
    return hold;
  }

  private ticket(holds: Hold[], tokens: number, cost: bigint): Ticket {
    let settled = false;
    return {
      settle: (actual: Settlement) => {
        if (settled) return Promise.resolve();
        settled = true;
        try {
          const tokenDelta = Math.max(0, Math.ceil(actual.tokens)) - tokens;
          const costDelta = (actual.costUsdNanos > 0n ? actual.costUsdNanos : 0n) - cost;
          for (const hold of holds) settleHold(hold, tokenDelta, costDelta);
        } catch {
          // settle never throws; the arithmetic above cannot fail on valid input anyway.
        }
        return Promise.resolve();
      },
    };
  }

  private bucketExpiry(index: number): number {
    return (index + 1) * this.bucketMs + this.windowMs;
  }

  private pruneRequests(state: SubjectState, now: number): void {
    const cutoff = now - this.windowMs;
    let drop = 0;
    while (drop < state.requests.length && (state.requests[drop] ?? Infinity) <= cutoff) drop += 1;
    if (drop > 0) state.requests.splice(0, drop);
  }

  private pruneTokens(state: SubjectState, now: number): void {
    for (const index of state.tokenBuckets.keys()) {
      if (this.bucketExpiry(index) <= now) state.tokenBuckets.delete(index);
    }
  }

  /** Drops subjects that hold nothing that could refuse a future call; at most once per window. */
  private maybeSweep(now: number): void {
    if (now - this.lastSweep < this.windowMs) return;
    this.lastSweep = now;
    const day = utcDayNumber(now);
    const month = utcMonthNumber(now);
    for (const [name, state] of this.states) {
      if (state.outstanding > 0) continue;
      this.pruneRequests(state, now);
      this.pruneTokens(state, now);
      if (state.requests.length > 0 || state.tokenBuckets.size > 0) continue;
      if (state.day.period === day && state.day.committed !== 0n) continue;
      if (state.month.period === month && state.month.committed !== 0n) continue;
      this.states.delete(name);
    }
  }
}

function settleHold(hold: Hold, tokenDelta: number, costDelta: bigint): void {
  const { state } = hold;
  state.outstanding -= 1;
  if (hold.slot) state.active -= 1;
  if (hold.tokenBucket !== undefined && tokenDelta !== 0) {
    const current = state.tokenBuckets.get(hold.tokenBucket);
    if (current !== undefined) {
      const next = current + tokenDelta;
      if (next > 0) state.tokenBuckets.set(hold.tokenBucket, next);
      else state.tokenBuckets.delete(hold.tokenBucket);
    }
  }
  if (hold.dayPeriod !== undefined && state.day.period === hold.dayPeriod) state.day.committed += costDelta;
  if (hold.monthPeriod !== undefined && state.month.period === hold.monthPeriod) state.month.committed += costDelta;
}

export function hasAnyLimit(limits: Limits): boolean {
  return (
    limits.requestsPerMinute !== undefined ||
    limits.tokensPerMinute !== undefined ||
    limits.concurrentRequests !== undefined ||
    limits.budgetUsdNanosPerDay !== undefined ||
    limits.budgetUsdNanosPerMonth !== undefined
  );
}
