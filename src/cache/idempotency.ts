import { createHash, randomUUID } from "node:crypto";
import { abortReason, sleep } from "../core/abort.js";
import type { GenerationResult } from "../core/types.js";
import { LlmError } from "../errors/llm-error.js";
import type { KvStore } from "./kv-store.js";
import { fromStoredGeneration, isStoredGeneration, toStoredGeneration, type StoredGeneration } from "./stored-generation.js";

/** Every idempotency record's key starts with this; bump the version when the record shape changes. */
export const IDEMPOTENCY_KEY_PREFIX = "llm:v1:idem:";

/**
 * Where the record for a tenant's idempotency key lives: `llm:v1:idem:<tenant>:<sha256(key) hex>`.
 * The hash has a fixed length and comes last, so two (tenant, key) pairs never share a key.
 */
export function idempotencyStorageKey(tenant: string, idempotencyKey: string): string {
  return `${IDEMPOTENCY_KEY_PREFIX}${tenant}:${createHash("sha256").update(idempotencyKey, "utf8").digest("hex")}`;
}

/** A first call is running (somewhere); `token` tells its owner's marker from a later one. */
interface PendingRecord {
  state: "pending";
  requestKey: string;
  token: string;
  startedAt: number;
}

/** The first call finished: retries get `result`. */
interface DoneRecord {
  state: "done";
  requestKey: string;
  result: StoredGeneration;
  completedAt: number;
}

type IdempotencyRecord = PendingRecord | DoneRecord;

function parseRecord(value: unknown): IdempotencyRecord | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (typeof v["requestKey"] !== "string") return undefined;
  if (v["state"] === "pending" && typeof v["token"] === "string" && typeof v["startedAt"] === "number") {
    return value as PendingRecord;
  }
  if (v["state"] === "done" && isStoredGeneration(v["result"]) && typeof v["completedAt"] === "number") {
    return value as DoneRecord;
  }
  return undefined;
}

export interface IdempotencyOptions {
  /** The same store as the response cache: memory in one process, Redis across replicas. */
  store: KvStore;
  /** How long a finished result answers retries with the same key, e.g. 24 h. */
  windowMs: number;
  /** Store trouble (also reported by the store itself) and unreadable records. */
  onError: (err: Error) => void;
  now?: () => number;
  /** Waiting on another replica: first poll after this, doubling up to pollMaxMs. Defaults 20 / 250 ms. */
  pollMinMs?: number;
  pollMaxMs?: number;
  /** The most an in-flight marker outlives its owner's deadline when the owner dies. Default 10 min cap. */
  maxInFlightMs?: number;
}

/** Who is asking, and for what. */
export interface IdempotencyScope {
  tenant: string;
  /** The client's key; "" means the call is not idempotent and nothing is done. */
  idempotencyKey: string;
  /** cacheKey() of the request: a key reused for a different request is rejected. */
  requestKey: string;
}

/** The caller's bounds while it waits for an earlier call with the same key. */
export interface IdempotencyWait {
  signal: AbortSignal;
  /** ms since the epoch. */
  deadline: number;
}

/** The right to run the call. Settle it exactly once; both methods never throw. */
export interface IdempotencyLease {
  /** Stores the result for the window and hands it to every duplicate waiting for it. */
  complete(result: GenerationResult): Promise<void>;
  /** The call failed or was cancelled: releases the key so the next attempt runs afresh. */
  abandon(): Promise<void>;
}

export type IdempotencyStart =
  | { kind: "replay"; result: GenerationResult }
  | { kind: "lead"; lease: IdempotencyLease };

export interface IdempotencyStats {
  /** Calls answered with an earlier call's result. */
  replays: number;
  /** Calls that waited for an earlier call still in flight (here or on another replica). */
  waits: number;
  /** Keys reused for a different request (rejected). */
  conflicts: number;
  /** Calls that ran without idempotency because the store failed. */
  degraded: number;
}

interface LocalFlight {
  readonly requestKey: string;
  readonly done: Promise<GenerationResult | undefined>;
  settle(result: GenerationResult | undefined): void;
}

const NOOP_LEASE: IdempotencyLease = { complete: () => Promise.resolve(), abandon: () => Promise.resolve() };
/** Safety bounds on the retry loops; the caller's deadline ends them long before. */
const MAX_ROUNDS = 1000;
const MARKER_SLACK_MS = 1000;

function localFlight(requestKey: string): LocalFlight {
  let settle!: (result: GenerationResult | undefined) => void;
  const done = new Promise<GenerationResult | undefined>((resolve) => {
    settle = resolve;
  });
  return { requestKey, done, settle };
}

/**
 * Idempotency keys: a call that repeats an earlier call's idempotency key (same tenant, within
 * the window) gets the earlier call's result instead of reaching the upstream again. Only
 * successes are kept: when the first call fails or is cancelled, the key is released and the
 * next call with it runs afresh.
 *
 * One record per key in the shared store: a short `pending` marker written with SET NX while the
 * first call runs (it lives until that call's deadline, at most maxInFlightMs, so a crashed owner
 * cannot block the key for long), replaced by `done` + the result for `windowMs`.
 *
 * Duplicates that arrive while the first call is running wait for it:
 * - in the same process, on the first call's completion (no polling, no store round trips). This
 *   is deliberately not SingleFlight: the work belongs to the first caller's request (its
 *   deadline, its cancellation, its ledger row), and when it fails the duplicate should run the
 *   call itself rather than inherit a cancellation that was not its own;
 * - on another replica, by polling the store (20 ms doubling to 250 ms) until the result appears,
 *   the marker goes away (the first failed: this call claims the key and runs) or the caller's own
 *   signal or deadline ends the wait. No new error reason is needed: the wait is bounded by the
 *   caller's deadline like everything else.
 *
 * A key reused with a different request (different cacheKey) is INVALID_REQUEST naming
 * idempotency_key. When the store fails the call runs without idempotency (onError reports it);
 * duplicates in the same process are still coalesced.
 */
export class Idempotency {
  private readonly store: KvStore;
  private readonly windowMs: number;
  private readonly onError: (err: Error) => void;
  private readonly now: () => number;
  private readonly pollMinMs: number;
  private readonly pollMaxMs: number;
  private readonly maxInFlightMs: number;
  private readonly local = new Map<string, LocalFlight>();
  private readonly counters: IdempotencyStats = { replays: 0, waits: 0, conflicts: 0, degraded: 0 };

  constructor(options: IdempotencyOptions) {
    this.store = options.store;
    this.windowMs = options.windowMs;
    this.onError = options.onError;
    this.now = options.now ?? Date.now;
    this.pollMinMs = options.pollMinMs ?? 20;
    this.pollMaxMs = options.pollMaxMs ?? 250;
    this.maxInFlightMs = options.maxInFlightMs ?? 10 * 60_000;
  }

  get stats(): IdempotencyStats {
    return { ...this.counters };
  }

  /**
   * Runs `fn` once per (tenant, idempotency key) within the window: the first call runs it, a
   * repeat gets the first call's result with `replayed: true`.
   */
  async run(
    scope: IdempotencyScope,
    wait: IdempotencyWait,
    fn: () => Promise<GenerationResult>,
  ): Promise<{ result: GenerationResult; replayed: boolean }> {
    const start = await this.begin(scope, wait);
    if (start.kind === "replay") return { result: start.result, replayed: true };
    let result: GenerationResult;
    try {
      result = await fn();
    } catch (err) {
      await start.lease.abandon();
      throw err;
    }
    await start.lease.complete(result);
    return { result, replayed: false };
  }

  /**
   * The lower-level form of run() for calls whose result arrives over time (a stream): either the
   * earlier result to replay, or a lease to run the call under and settle when it ends.
   */
  async begin(scope: IdempotencyScope, wait: IdempotencyWait): Promise<IdempotencyStart> {
    if (scope.idempotencyKey === "") return { kind: "lead", lease: NOOP_LEASE };
    const key = idempotencyStorageKey(scope.tenant, scope.idempotencyKey);
    for (let round = 0; round < MAX_ROUNDS; round++) {
      this.checkWait(wait);
      const running = this.local.get(key);
      if (running) {
        if (running.requestKey !== scope.requestKey) throw this.conflict();
        this.counters.waits++;
        const result = await this.waitFor(running.done, wait);
        if (result) {
          this.counters.replays++;
          return { kind: "replay", result };
        }
        continue; // the first call failed and released the key: try to claim it
      }
      const mine = localFlight(scope.requestKey);
      this.local.set(key, mine);
      try {
        return await this.claim(key, scope, wait, mine);
      } catch (err) {
        this.release(key, mine, undefined);
        throw err;
      }
    }
    this.onError(new Error(`idempotency: gave up claiming ${key} after ${MAX_ROUNDS} rounds; running without it`));
    this.counters.degraded++;
    return { kind: "lead", lease: NOOP_LEASE };
  }

  /** Reads the record and either replays it, waits for its owner, or claims the key. */
  private async claim(key: string, scope: IdempotencyScope, wait: IdempotencyWait, mine: LocalFlight): Promise<IdempotencyStart> {
    let delay = this.pollMinMs;
    let waiting = false;
    for (let round = 0; round < MAX_ROUNDS; round++) {
      this.checkWait(wait);
      const stored = await this.store.get(key);
      if (stored !== undefined) {
        const record = parseRecord(stored);
        if (!record) {
          this.onError(new Error(`idempotency record ${key} has an unexpected shape; running without idempotency`));
          return this.lead(key, scope, mine, null);
        }
        if (record.requestKey !== scope.requestKey) throw this.conflict();
        if (record.state === "done") {
          const result = fromStoredGeneration(record.result);
          this.release(key, mine, result);
          this.counters.replays++;
          return { kind: "replay", result };
        }
        // Running on another replica (or a crashed owner's marker, until it expires): poll.
        if (!waiting) this.counters.waits++;
        waiting = true;
        await sleep(Math.max(0, Math.min(delay, wait.deadline - this.now())), wait.signal);
        delay = Math.min(delay * 2, this.pollMaxMs);
        continue;
      }
      const token = randomUUID();
      const marker: PendingRecord = { state: "pending", requestKey: scope.requestKey, token, startedAt: this.now() };
      const claimed = await this.store.setIfAbsent(key, marker, this.markerTtl(wait));
      if (claimed === "set") return this.lead(key, scope, mine, token);
      if (claimed === "failed") return this.lead(key, scope, mine, null);
      // "exists": another replica claimed it between our read and write; read it again.
    }
    return this.lead(key, scope, mine, null);
  }

  /** A lease for the local owner; `token` null means the store is not usable and only local waiters are served. */
  private lead(key: string, scope: IdempotencyScope, mine: LocalFlight, token: string | null): IdempotencyStart {
    if (token === null) this.counters.degraded++;
    let settled = false;
    const lease: IdempotencyLease = {
      complete: async (result) => {
        if (settled) return;
        settled = true;
        // Local duplicates get the result at once; new local arrivals find it until the write lands.
        mine.settle(result);
        if (token !== null) {
          const record: DoneRecord = {
            state: "done",
            requestKey: scope.requestKey,
            result: toStoredGeneration(result),
            completedAt: this.now(),
          };
          await this.store.set(key, record, this.windowMs);
        }
        if (this.local.get(key) === mine) this.local.delete(key);
      },
      abandon: async () => {
        if (settled) return;
        settled = true;
        if (token !== null) {
          // Only remove our own marker, not one a later owner wrote after ours expired.
          const current = parseRecord(await this.store.get(key));
          if (current?.state === "pending" && current.token === token) await this.store.delete(key);
        }
        this.release(key, mine, undefined);
      },
    };
    return { kind: "lead", lease };
  }

  /** Ends a local flight: the entry goes first so woken waiters do not find it again. */
  private release(key: string, mine: LocalFlight, result: GenerationResult | undefined): void {
    if (this.local.get(key) === mine) this.local.delete(key);
    mine.settle(result);
  }

  private markerTtl(wait: IdempotencyWait): number {
    const left = wait.deadline - this.now();
    if (!Number.isFinite(left)) return this.maxInFlightMs;
    return Math.min(this.maxInFlightMs, Math.max(MARKER_SLACK_MS, left + MARKER_SLACK_MS));
  }

  private conflict(): LlmError {
    this.counters.conflicts++;
    const description = "was already used for a different request; use a new key for a new request";
    return new LlmError("INVALID_REQUEST", `invalid request: idempotency_key ${description}`, {
      fieldViolations: [{ field: "idempotency_key", description }],
    });
  }

  private checkWait(wait: IdempotencyWait): void {
    if (wait.signal.aborted) throw abortReason(wait.signal);
    if (this.now() >= wait.deadline) throw deadlineError();
  }

  /** `done`, unless the caller's signal or deadline comes first. */
  private waitFor<R>(done: Promise<R>, wait: IdempotencyWait): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const left = wait.deadline - this.now();
      const onAbort = () => {
        cleanup();
        reject(abortReason(wait.signal));
      };
      const timer = Number.isFinite(left)
        ? setTimeout(() => {
            cleanup();
            reject(deadlineError());
          }, Math.max(0, left))
        : undefined;
      const cleanup = () => {
        clearTimeout(timer);
        wait.signal.removeEventListener("abort", onAbort);
      };
      wait.signal.addEventListener("abort", onAbort, { once: true });
      done.then(
        (value) => {
          cleanup();
          resolve(value);
        },
        (err: unknown) => {
          cleanup();
          reject(err);
        },
      );
    });
  }
}

function deadlineError(): LlmError {
  return new LlmError("PROVIDER_TIMEOUT", "deadline exceeded while waiting for an earlier call with the same idempotency_key");
}
