/**
 * The embedded database seen from the service's thread: the PGlite interface Kysely's
 * PGliteDialect uses (query, transaction, close, waitReady), carried out by pglite-worker.ts
 * in a worker thread. Queries and transactions keep PGlite's own semantics there: one at a time,
 * a transaction holding the database until it ends.
 */
import { Worker } from "node:worker_threads";
import type { PGlite as KyselyPglite, PGliteQueryOptions, PGliteQueryResults, PGliteTransaction } from "kysely";
import type { OkReply, PgliteReply, PgliteRequest, PgliteWorkerData, SerializedError } from "./pglite-worker.js";

/** A distributive Omit, so each variant of the request union keeps its own fields. */
type WithoutId<T> = T extends unknown ? Omit<T, "id"> : never;

/** A Postgres error from the worker: its message and safe fields (code, detail, constraint…). */
export class EmbeddedDatabaseError extends Error {
  readonly code?: string;
  constructor(serialized: SerializedError) {
    super(serialized.message);
    this.name = serialized.name === "Error" ? "EmbeddedDatabaseError" : serialized.name;
    Object.assign(this, serialized.fields);
  }
}

interface Pending {
  resolve(reply: OkReply): void;
  reject(err: Error): void;
}

export class RemotePglite implements KyselyPglite {
  readonly waitReady: Promise<void>;
  #worker: Worker;
  #pending = new Map<number, Pending>();
  #nextId = 1;
  #nextTx = 1;
  #ready = false;
  #closed = false;
  /** Set once the worker has failed or stopped on its own: every later call rejects with it. */
  #failure: Error | undefined;

  constructor(workerUrl: URL, data: PgliteWorkerData) {
    this.#worker = new Worker(workerUrl, { workerData: { ...data, pgliteWorker: true } });
    this.waitReady = new Promise<void>((resolve, reject) => {
      const onReady = (m: PgliteReply) => {
        if (m.id !== 0) return;
        this.#worker.off("message", onReady);
        if ("error" in m) {
          // Nothing will ever be asked of it: end the thread, so a failed start does not keep the process alive.
          this.#fail(new EmbeddedDatabaseError(m.error));
          void this.#worker.terminate();
          reject(this.#failure);
        } else {
          this.#ready = true;
          if (this.#pending.size === 0) this.#worker.unref();
          resolve();
        }
      };
      this.#worker.on("message", onReady);
      this.#worker.once("error", reject);
      this.#worker.once("exit", (code) => reject(new Error(`the embedded database worker exited (code ${code}) before it was ready`)));
    });
    // Nothing is lost if nobody waits for it: openPglite awaits it.
    this.waitReady.catch(() => undefined);
    this.#worker.on("message", (m: PgliteReply) => this.#settle(m));
    this.#worker.on("error", (err) => this.#fail(new Error(`the embedded database worker failed: ${err.message}`, { cause: err })));
    this.#worker.on("exit", (code) => {
      if (!this.#closed) this.#fail(new Error(`the embedded database worker exited (code ${code})`));
    });
    // Idle, the worker does not keep the process alive (as PGlite on the main thread does not);
    // while it starts, and while a call waits on it, it does.
  }

  get ready(): boolean {
    return this.#ready;
  }

  get closed(): boolean {
    return this.#closed;
  }

  query<T>(sql: string, params?: unknown[], _options?: PGliteQueryOptions): Promise<PGliteQueryResults<T>> {
    return this.#query<T>(sql, params, undefined);
  }

  async transaction<T>(callback: (tx: PGliteTransaction) => Promise<T>): Promise<T> {
    const tx = this.#nextTx++;
    await this.#call({ op: "begin", tx });
    let ended = false;
    const end = async (op: "commit" | "rollback") => {
      if (ended) return;
      ended = true;
      await this.#call({ op, tx });
    };
    let result: T;
    try {
      result = await callback({
        query: <R>(sql: string, params?: unknown[]) => this.#query<R>(sql, params, tx),
        rollback: () => end("rollback"),
      });
    } catch (err) {
      await end("rollback").catch(() => undefined);
      throw err;
    }
    await end("commit");
    return result;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.#failure === undefined) await this.#call({ op: "close" }).catch(() => undefined);
    this.#closed = true;
    await this.#worker.terminate();
  }

  async #query<T>(sql: string, params: unknown[] | undefined, tx: number | undefined): Promise<PGliteQueryResults<T>> {
    const reply = await this.#call({ op: "query", sql, params: params ?? [], ...(tx !== undefined ? { tx } : {}) });
    return { rows: (reply.rows ?? []) as T[], ...(reply.affectedRows !== undefined ? { affectedRows: reply.affectedRows } : {}) } as PGliteQueryResults<T>;
  }

  #call(request: WithoutId<PgliteRequest>): Promise<OkReply> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (this.#closed) return Promise.reject(new Error("the embedded database is closed"));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      if (this.#pending.size === 1 && this.#ready) this.#worker.ref();
      this.#worker.postMessage({ ...request, id } as PgliteRequest);
    });
  }

  #settle(m: PgliteReply): void {
    if (m.id === 0) return;
    const pending = this.#pending.get(m.id);
    if (pending === undefined) return;
    this.#pending.delete(m.id);
    if (this.#pending.size === 0 && this.#ready) this.#worker.unref();
    if ("ok" in m && m.ok) pending.resolve(m as OkReply);
    else if ("error" in m) pending.reject(new EmbeddedDatabaseError(m.error));
  }

  #fail(err: Error): void {
    this.#failure ??= err;
    for (const pending of this.#pending.values()) pending.reject(this.#failure);
    this.#pending.clear();
    this.#worker.unref();
  }
}
