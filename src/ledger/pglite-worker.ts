/**
 * The embedded database (PGlite) in a worker thread. database.ts starts it with
 * `new Worker(<this file>, { workerData })` and talks to it through pglite-remote.ts: each
 * message is one query, or the begin, commit or rollback of a transaction, answered by id.
 *
 * Why a thread: PGlite runs Postgres as WASM, synchronously, on the thread that calls it. On the
 * service's event loop a ledger flush of ~80 rows held every call for ~15 ms, which was most of
 * the c=1 p99 (README, Performance). Here it holds only this thread.
 *
 * It imports packages and node: builtins only, and one module of this repository (compact-heap, by
 * a URL with this file's own extension), so Node runs it as it is from src/ (type stripping, under
 * the tests) as well as compiled in dist/.
 */
import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import v8 from "node:v8";
import { parentPort, workerData } from "node:worker_threads";
import { PGlite, type Transaction } from "@electric-sql/pglite";

/** What database.ts passes as workerData. */
export interface PgliteWorkerData {
  dataDir: string;
  /** Postgres settings, `name=value`, as `-c` start parameters. */
  settings: string[];
  /** V8 flags to set before the WASM module is compiled (process-wide). */
  v8Flags: string[];
}

export type PgliteRequest =
  | { id: number; op: "query"; sql: string; params: unknown[]; tx?: number }
  | { id: number; op: "begin"; tx: number }
  | { id: number; op: "commit"; tx: number }
  | { id: number; op: "rollback"; tx: number }
  | { id: number; op: "close" };

/** The fields of a Postgres error worth keeping across the thread (never the query or its parameters). */
export const ERROR_FIELDS = ["code", "severity", "detail", "hint", "schema", "table", "column", "dataType", "constraint", "routine"] as const;

export interface SerializedError {
  name: string;
  message: string;
  fields: Partial<Record<(typeof ERROR_FIELDS)[number], string>>;
}

export interface OkReply {
  id: number;
  ok: true;
  rows?: unknown[];
  affectedRows?: number;
}

export type PgliteReply = { id: 0; op: "ready" } | { id: 0; op: "failed"; error: SerializedError } | OkReply | { id: number; ok: false; error: SerializedError };

const INT8_OID = 20;
const NUMERIC_OID = 1700;

function serialize(err: unknown): SerializedError {
  const e = err instanceof Error ? err : new Error(String(err));
  const fields: SerializedError["fields"] = {};
  for (const name of ERROR_FIELDS) {
    const value = (e as unknown as Record<string, unknown>)[name];
    if (typeof value === "string") fields[name] = value;
  }
  return { name: e.name, message: e.message, fields };
}

/** Thrown inside a transaction's callback to make PGlite roll it back. */
const ROLLBACK = Symbol("rollback");

interface OpenTransaction {
  tx: Transaction;
  decide(commit: boolean): void;
  done: Promise<unknown>;
}

async function serve(port: NonNullable<typeof parentPort>, data: PgliteWorkerData): Promise<void> {
  if (data.v8Flags.length > 0) v8.setFlagsFromString(data.v8Flags.join(" "));
  let pglite: PGlite;
  try {
    pglite = new PGlite({
      dataDir: data.dataDir,
      // int8 and numeric as decimal strings, as node-postgres gives them (schema.ts).
      parsers: { [INT8_OID]: (value: string) => value, [NUMERIC_OID]: (value: string) => value },
      startParams: [...PGlite.defaultStartParams, ...data.settings.flatMap((setting) => ["-c", setting])],
    });
    await pglite.waitReady;
    // Opening the database allocated a lot that is dead now (the 9 MB WASM bytes among it); give
    // it back before going idle, as the service's own thread does (src/compact-heap.ts, imported
    // with this file's extension so that it loads from src/ as well as from dist/).
    const ext = extname(fileURLToPath(import.meta.url));
    const { compactHeap } = (await import(new URL(`../compact-heap${ext}`, import.meta.url).href)) as { compactHeap: () => unknown };
    compactHeap();
  } catch (err) {
    port.postMessage({ id: 0, op: "failed", error: serialize(err) } satisfies PgliteReply);
    return;
  }
  const transactions = new Map<number, OpenTransaction>();
  const reply = (message: PgliteReply) => port.postMessage(message);

  const begin = (txId: number): Promise<void> =>
    new Promise((resolve, reject) => {
      let decide!: (commit: boolean) => void;
      const decided = new Promise<boolean>((r) => (decide = r));
      const done = pglite.transaction(async (tx) => {
        transactions.set(txId, { tx, decide, done });
        resolve();
        if (!(await decided)) throw ROLLBACK;
      });
      // A BEGIN that fails rejects before the callback runs.
      done.catch((err: unknown) => {
        if (!transactions.has(txId)) reject(err);
      });
    });

  const handle = async (m: PgliteRequest): Promise<PgliteReply> => {
    try {
      switch (m.op) {
        case "query": {
          const target = m.tx === undefined ? pglite : transactions.get(m.tx)?.tx;
          if (target === undefined) throw new Error(`no open transaction ${m.tx}`);
          const result = await target.query(m.sql, m.params, { rowMode: "object" });
          return { id: m.id, ok: true, rows: result.rows, ...(result.affectedRows !== undefined ? { affectedRows: result.affectedRows } : {}) };
        }
        case "begin":
          await begin(m.tx);
          return { id: m.id, ok: true };
        case "commit":
        case "rollback": {
          const open = transactions.get(m.tx);
          if (open === undefined) throw new Error(`no open transaction ${m.tx}`);
          open.decide(m.op === "commit");
          try {
            await open.done;
          } catch (err) {
            if (err !== ROLLBACK) throw err;
          } finally {
            transactions.delete(m.tx);
          }
          return { id: m.id, ok: true };
        }
        case "close":
          if (!pglite.closed) await pglite.close();
          return { id: m.id, ok: true };
      }
    } catch (err) {
      return { id: m.id, ok: false, error: serialize(err) };
    }
  };

  port.on("message", (m: PgliteRequest) => {
    void handle(m).then((answer) => {
      reply(answer);
      if (m.op === "close") port.close();
    });
  });
  reply({ id: 0, op: "ready" });
}

if (parentPort !== null && (workerData as { pgliteWorker?: boolean } | undefined)?.pgliteWorker === true) {
  await serve(parentPort, workerData as PgliteWorkerData);
}
