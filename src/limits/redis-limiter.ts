import { randomUUID } from "node:crypto";
import type { AdmitResult, LimitSubject, Limiter, Reservation, Settlement, Ticket } from "./limiter.js";
import { refusalError, subjectName, type LimitViolation } from "./limit-refusal.js";
import { DEFAULT_CONCURRENCY_RETRY_AFTER_MS, DEFAULT_WINDOW_MS, TOKEN_BUCKETS_PER_WINDOW, hasAnyLimit } from "./memory-limiter.js";
import { RedisScript, type RedisCommandClient } from "./redis-script.js";
import { ADMIT_SCRIPT, KIND_CODES, RENEW_SCRIPT, SETTLE_SCRIPT } from "./redis-scripts.js";

export interface RedisLimiterOptions {
  client: RedisCommandClient;
  /** Prefix of every key this limiter writes. Default "llm:limits". */
  keyPrefix?: string;
  /** Length of the rate windows. 60 000 (a minute) outside tests. */
  windowMs?: number;
  /**
   * How long a concurrency slot (and a ticket's settle marker) outlives the last renewal. Unsettled
   * tickets are renewed every third of it, so a slot leaks for at most this long when a replica dies.
   * Default 60 s.
   */
  leaseMs?: number;
  /** The RetryInfo hint when every concurrency slot is taken. Default 1 s. */
  concurrencyRetryAfterMs?: number;
  /** How long `settle` waits for Redis before returning; an unanswered settle goes on in the background. Default 250 ms. */
  settleTimeoutMs?: number;
  /** Settles that failed are kept (up to this many, oldest dropped) and sent again later. Default 10 000. */
  maxPendingSettles?: number;
  /** Failures of background work (lease renewal, settle retries), for a log line. */
  onBackgroundError?: (err: unknown) => void;
}

export const DEFAULT_LEASE_MS = 60_000;
const RENEW_BATCH = 200;

/** The Redis counterpart of a ticket: what settle must correct, and where. */
interface RedisHold {
  id: string;
  subjects: readonly LimitSubject[];
  tokens: number;
  cost: bigint;
  bucket: string;
  dayId: string;
  monthId: string;
}

interface PendingSettle {
  keys: string[];
  args: string[];
}

/**
 * Limits shared by every replica through one Redis: one atomic Lua script per admission (all
 * subjects, all limits, all-or-nothing) and one per settle, on the server's clock. See
 * redis-scripts.ts for the keys, TTLs and window algorithms. `admit` rejects when Redis fails (the
 * ResilientLimiter turns that into the in-process fallback); `settle` never throws: a settle Redis
 * did not take is kept and sent again, and applies at most once.
 */
export class RedisLimiter implements Limiter {
  private readonly client: RedisCommandClient;
  private readonly prefix: string;
  private readonly windowMs: number;
  private readonly bucketMs: number;
  private readonly leaseMs: number;
  private readonly concurrencyRetryAfterMs: number;
  private readonly settleTimeoutMs: number;
  private readonly maxPendingSettles: number;
  private readonly onBackgroundError: (err: unknown) => void;
  private readonly admitScript = new RedisScript(ADMIT_SCRIPT);
  private readonly settleScript = new RedisScript(SETTLE_SCRIPT);
  private readonly renewScript = new RedisScript(RENEW_SCRIPT);
  /** Unsettled tickets whose marker and leases are renewed. */
  private readonly open = new Map<string, RedisHold>();
  private renewTimer: NodeJS.Timeout | undefined;
  private renewing = false;
  private readonly pending: PendingSettle[] = [];
  private retrying: Promise<void> | undefined;
  private droppedSettles = 0;
  private closed = false;

  constructor(options: RedisLimiterOptions) {
    this.client = options.client;
    this.prefix = options.keyPrefix ?? "llm:limits";
    this.windowMs = Math.round(options.windowMs ?? DEFAULT_WINDOW_MS);
    if (!(this.windowMs > 0)) throw new Error("windowMs must be positive");
    this.bucketMs = Math.max(1, Math.floor(this.windowMs / TOKEN_BUCKETS_PER_WINDOW));
    this.leaseMs = Math.round(options.leaseMs ?? DEFAULT_LEASE_MS);
    if (!(this.leaseMs >= 30)) throw new Error("leaseMs must be at least 30 ms");
    this.concurrencyRetryAfterMs = options.concurrencyRetryAfterMs ?? DEFAULT_CONCURRENCY_RETRY_AFTER_MS;
    this.settleTimeoutMs = options.settleTimeoutMs ?? 250;
    this.maxPendingSettles = options.maxPendingSettles ?? 10_000;
    this.onBackgroundError = options.onBackgroundError ?? (() => {});
  }

  /** Settles waiting to be sent again, and how many were dropped past the bound (for metrics and tests). */
  get pendingSettles(): { queued: number; dropped: number } {
    return { queued: this.pending.length, dropped: this.droppedSettles };
  }

  /** Round trip to the server; rejects when it does not answer. */
  async ping(): Promise<void> {
    await this.client.sendCommand(["PING"]);
  }

  async admit(subjects: readonly LimitSubject[], reservation: Reservation): Promise<AdmitResult> {
    const limited = subjects.filter((s) => hasAnyLimit(s.limits));
    if (limited.length === 0) return { ok: true, ticket: NOOP_TICKET };
    const id = randomUUID();
    const tokens = Math.max(0, Math.ceil(reservation.tokens));
    const cost = reservation.costUsdNanos > 0n ? reservation.costUsdNanos : 0n;
    const needsSettle = limited.some((s) => needsSettlement(s));

    const keys = [this.markerKey(id)];
    const args = [
      id,
      String(this.windowMs),
      String(this.bucketMs),
      String(this.leaseMs),
      String(tokens),
      cost.toString(),
      String(Math.round(this.concurrencyRetryAfterMs)),
      needsSettle ? "1" : "0",
      String(limited.length),
    ];
    for (const s of limited) {
      const name = subjectName(s);
      const l = s.limits;
      keys.push(this.key("rpm", name), this.key("tpm", name), this.key("conc", name), this.key("spend-day", name), this.key("spend-month", name));
      args.push(
        countArg(l.requestsPerMinute),
        countArg(l.tokensPerMinute),
        countArg(l.concurrentRequests),
        l.budgetUsdNanosPerDay === undefined ? "" : (l.budgetUsdNanosPerDay - cost).toString(),
        l.budgetUsdNanosPerMonth === undefined ? "" : (l.budgetUsdNanosPerMonth - cost).toString(),
      );
    }

    const reply = await this.admitScript.run(this.client, keys, args);
    if (!Array.isArray(reply) || reply.length < 1) throw new Error(`unexpected reply from the admit script: ${String(reply)}`);
    if (Number(reply[0]) !== 1) return { ok: false, error: refusalError(this.violations(limited, reply)) };
    if (this.pending.length > 0) void this.retryPendingSettles();
    if (!needsSettle) return { ok: true, ticket: NOOP_TICKET };

    const hold: RedisHold = {
      id,
      subjects: limited,
      tokens,
      cost,
      bucket: String(reply[1]),
      dayId: String(reply[2]),
      monthId: String(reply[3]),
    };
    this.open.set(id, hold);
    this.startRenewing();
    let settled = false;
    return {
      ok: true,
      ticket: {
        settle: (actual: Settlement) => {
          if (settled) return Promise.resolve();
          settled = true;
          return this.settle(hold, actual);
        },
      },
    };
  }

  /** Sends the settles that failed before, oldest first, until one fails again. */
  retryPendingSettles(): Promise<void> {
    if (this.retrying !== undefined) return this.retrying;
    const run = async () => {
      try {
        while (this.pending.length > 0 && !this.closed) {
          const next = this.pending[0];
          if (next === undefined) break;
          await this.settleScript.run(this.client, next.keys, next.args);
          this.pending.shift();
        }
      } catch (err) {
        this.onBackgroundError(err);
      } finally {
        this.retrying = undefined;
      }
    };
    this.retrying = run();
    return this.retrying;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.renewTimer !== undefined) clearInterval(this.renewTimer);
    this.renewTimer = undefined;
    this.open.clear();
  }

  private violations(limited: readonly LimitSubject[], reply: unknown[]): LimitViolation[] {
    const out: LimitViolation[] = [];
    for (let i = 1; i + 2 < reply.length; i += 3) {
      const subject = limited[Number(reply[i])];
      const kind = KIND_CODES[Number(reply[i + 1]) as keyof typeof KIND_CODES];
      const retry = Number(reply[i + 2]);
      if (subject === undefined || kind === undefined) continue;
      out.push({ subject, kind, retryAfterMs: retry >= 0 ? Math.max(1, retry) : undefined });
    }
    if (out.length === 0) throw new Error("the admit script refused without naming a limit");
    return out;
  }

  private settle(hold: RedisHold, actual: Settlement): Promise<void> {
    this.open.delete(hold.id);
    if (this.open.size === 0) this.stopRenewing();
    const tokenDelta = Math.max(0, Math.ceil(actual.tokens)) - hold.tokens;
    const costDelta = (actual.costUsdNanos > 0n ? actual.costUsdNanos : 0n) - hold.cost;
    const keys = [this.markerKey(hold.id)];
    const args = [hold.id, hold.bucket, String(tokenDelta), costDelta.toString(), String(hold.subjects.length)];
    for (const s of hold.subjects) {
      const name = subjectName(s);
      const l = s.limits;
      keys.push(
        this.key("tpm", name),
        this.key("conc", name),
        `${this.key("spend-day", name)}:${hold.dayId}`,
        `${this.key("spend-month", name)}:${hold.monthId}`,
      );
      args.push(
        [l.tokensPerMinute, l.concurrentRequests, l.budgetUsdNanosPerDay, l.budgetUsdNanosPerMonth]
          .map((v) => (v === undefined ? "0" : "1"))
          .join(""),
      );
    }
    if (this.closed) return Promise.resolve();
    const sent = this.settleScript.run(this.client, keys, args).then(
      () => undefined,
      (err: unknown) => {
        this.keepForRetry({ keys, args });
        this.onBackgroundError(err);
      },
    );
    // Settle is at the end of every call: never hold the caller up for long on a slow Redis.
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.settleTimeoutMs);
      timer.unref();
      void sent.then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private keepForRetry(settle: PendingSettle): void {
    if (this.closed) return;
    this.pending.push(settle);
    while (this.pending.length > this.maxPendingSettles) {
      this.pending.shift();
      this.droppedSettles += 1;
    }
  }

  private startRenewing(): void {
    if (this.renewTimer !== undefined || this.closed) return;
    this.renewTimer = setInterval(() => void this.renew(), Math.max(10, Math.floor(this.leaseMs / 3)));
    this.renewTimer.unref();
  }

  private stopRenewing(): void {
    if (this.renewTimer !== undefined) clearInterval(this.renewTimer);
    this.renewTimer = undefined;
  }

  /** One renewal round over every unsettled ticket, in batches; skipped while the last is still running. */
  private async renew(): Promise<void> {
    if (this.renewing) return;
    this.renewing = true;
    try {
      const holds = [...this.open.values()];
      for (let start = 0; start < holds.length; start += RENEW_BATCH) {
        const keys: string[] = [];
        const args = [String(this.leaseMs)];
        for (const hold of holds.slice(start, start + RENEW_BATCH)) {
          const conc = hold.subjects.filter((s) => s.limits.concurrentRequests !== undefined);
          keys.push(this.markerKey(hold.id), ...conc.map((s) => this.key("conc", subjectName(s))));
          args.push(String(conc.length), hold.id);
        }
        await this.renewScript.run(this.client, keys, args);
      }
    } catch (err) {
      this.onBackgroundError(err);
    } finally {
      this.renewing = false;
    }
  }

  private key(kind: string, name: string): string {
    return `${this.prefix}:${kind}:${name}`;
  }

  private markerKey(id: string): string {
    return `${this.prefix}:ticket:${id}`;
  }
}

const NOOP_TICKET: Ticket = { settle: () => Promise.resolve() };

function countArg(value: number | undefined): string {
  return value === undefined ? "" : String(Math.max(0, Math.floor(value)));
}

/** Whether an admission against this subject leaves anything that settle must give back or correct. */
function needsSettlement(subject: LimitSubject): boolean {
  const l = subject.limits;
  return (
    l.tokensPerMinute !== undefined ||
    l.concurrentRequests !== undefined ||
    l.budgetUsdNanosPerDay !== undefined ||
    l.budgetUsdNanosPerMonth !== undefined
  );
}
