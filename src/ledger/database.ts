/** Opens the ledger database: Postgres when a URL is given, otherwise PGlite persisted on disk. */
import { execFile } from "node:child_process";
import { access, mkdir } from "node:fs/promises";
import { extname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import v8 from "node:v8";
import type { PGlite } from "@electric-sql/pglite";
import { Kysely, PGliteDialect, PostgresDialect } from "kysely";
import type pg from "pg";
import { acquirePidLock } from "./pid-lock.js";
import { migrateToLatest } from "./migrations.js";
import { RemotePglite } from "./pglite-remote.js";
import type { DatabaseSchema } from "./schema.js";

export interface DatabaseOptions {
  /** `postgres://…`; when absent the embedded PGlite database is used. */
  databaseUrl?: string;
  /** Where PGlite keeps its files (in a `pglite` folder inside it). */
  dataDir: string;
  /**
   * Runs PGlite in a worker thread (pglite-worker.ts) instead of on the event loop: no call waits
   * while a ledger flush runs (c=1 p99 ~19 → ~12 ms on the bench machine), for ~18–25 MB more
   * resident memory (an idle Node worker alone is ~17 MB). Default false.
   */
  pgliteWorker?: boolean;
}

export type DatabaseKind = "postgres" | "pglite";

export interface Database {
  db: Kysely<DatabaseSchema>;
  kind: DatabaseKind;
  /** Closes the pool or the PGlite instance. */
  close(): Promise<void>;
}

export interface DatabaseHooks {
  /** An idle pooled Postgres connection failed (the pool drops it and opens another when needed). */
  onPoolError?: (err: Error) => void;
}

const INT8_OID = 20;
const NUMERIC_OID = 1700;

/** int8 and numeric as decimal strings, whatever the process-wide pg type parsers say. */
function pgTypesOf(types: typeof pg.types): pg.CustomTypesConfig {
  return {
    getTypeParser: ((oid: number, format?: "text" | "binary") =>
      (oid === INT8_OID || oid === NUMERIC_OID) && format !== "binary"
        ? (value: string) => value
        : types.getTypeParser(oid, format)) as pg.CustomTypesConfig["getTypeParser"],
  };
}

/** PGlite parses int8 to a Number by default (lossy past 2^53); keep it a string, as node-postgres does (pglite-worker.ts has the same). */
const pgliteParsers = {
  [INT8_OID]: (value: string) => value,
  [NUMERIC_OID]: (value: string) => value,
};

/** Opens the database and brings its schema up to date before returning. */
export async function openDatabase(opts: DatabaseOptions, hooks: DatabaseHooks = {}): Promise<Database> {
  const opened = opts.databaseUrl ? await openPostgres(opts.databaseUrl, hooks) : await openPglite(opts.dataDir, opts.pgliteWorker === true);
  try {
    await migrateToLatest(opened.db);
  } catch (err) {
    await opened.close().catch(() => undefined);
    throw err;
  }
  return opened;
}

/** node-postgres is imported only here, so the embedded default never loads it. */
async function openPostgres(databaseUrl: string, hooks: DatabaseHooks): Promise<Database> {
  const { default: pg } = await import("pg");
  const pool = new pg.Pool({ connectionString: databaseUrl, types: pgTypesOf(pg.types) });
  // Without a listener an idle client's error would crash the process.
  pool.on("error", (err) => hooks.onPoolError?.(err));
  const db = new Kysely<DatabaseSchema>({ dialect: new PostgresDialect({ pool }) });
  return { db, kind: "postgres", close: () => db.destroy() };
}

/**
 * PGlite is single-process: a second process opening the same directory (the keys
 * CLI while the server runs, say) would lose its writes. A pid lock file refuses that.
 */
function lockDataDir(dir: string): Promise<() => Promise<void>> {
  return acquirePidLock(
    `${dir}.pid`,
    (owner) =>
      `the embedded database in ${dir} is in use by process ${owner}; stop it first, or use DATABASE_URL (Postgres) to share one database`,
  );
}

/**
 * Postgres settings for the embedded database, given on its command line (so nothing is written
 * into the data directory, and a directory written by an older version opens the same way).
 * The ledger is a few small tables written in batches: Postgres's default 128 MB of shared
 * buffers, which PGlite allocates and touches inside its WASM memory, would be most of the
 * service's resident memory for nothing. 8 MB (1024 pages) still holds the ledger's hot pages;
 * wal_buffers follows shared_buffers (1/32 of it) unless set.
 */
export const PGLITE_SETTINGS: readonly string[] = ["shared_buffers=8MB"];

/**
 * PGlite's 9 MB WASM module, compiled by V8's optimizing tier, took the process to ~800 MB of
 * resident memory while starting (measured under Node 24; ~270 MB with the baseline compiler
 * alone) and left it ~40 MB larger once idle. The baseline compiler (Liftoff) makes the database
 * itself ~30% slower per ledger row (batched INSERTs: ~0.11 → ~0.15 ms of CPU per row), which is a
 * small share of a call's cost; a process that needs 800 MB to start does not fit a small
 * container at all. Set before the module is compiled (by the worker, when PGlite runs in one); they
 * are process-wide and apply to any WASM compiled after, and the service compiles none other.
 */
const BASELINE_WASM_FLAGS = ["--liftoff-only", "--no-wasm-tier-up", "--no-wasm-dynamic-tiering"];

function useBaselineWasmCompiler(): void {
  // Set at run time, --liftoff-only does not bring along the flags it implies on the command line.
  v8.setFlagsFromString(BASELINE_WASM_FLAGS.join(" "));
}

/** pglite-initdb beside this module: .ts when run from src/ (tests), .js when compiled. */
const INITDB_SCRIPT = fileURLToPath(new URL(`./pglite-initdb${extname(fileURLToPath(import.meta.url))}`, import.meta.url));

/**
 * Creates the cluster in a child process when the directory has none yet. PGlite's own initdb
 * runs in the opening process: a second PGlite instance and the initdb WASM module, whose WASM
 * memories (~400 MB) stay resident until V8 happens to run a full GC, which an idle service
 * never does, and whose compilation leaves ~70 MB of fragmented malloc heap behind for good.
 * The first start idled at ~610 MB instead of ~205 MB. In a child all of that ends with the
 * child; the service then opens the cluster the way it does on every later start (~0.5 s more,
 * once).
 */
async function initPgliteCluster(dir: string): Promise<void> {
  const created = await access(join(dir, "PG_VERSION")).then(
    () => true,
    () => false,
  );
  if (created) return;
  await new Promise<void>((resolveInit, rejectInit) => {
    execFile(
      process.execPath,
      [...BASELINE_WASM_FLAGS, INITDB_SCRIPT, dir, ...PGLITE_SETTINGS],
      { maxBuffer: 4 * 1024 * 1024 },
      (err, _stdout, stderr) => {
        if (!err) return resolveInit();
        const detail = stderr.trim().split("\n").slice(-5).join("\n");
        rejectInit(new Error(`creating the embedded database in ${dir} failed: ${detail || err.message}`, { cause: err }));
      },
    );
  });
}

/** pglite-worker beside this module: .ts when run from src/ (tests), .js when compiled. */
const PGLITE_WORKER = new URL(`./pglite-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url);

async function openPglite(dataDir: string, inWorker: boolean): Promise<Database> {
  const dir = join(resolve(dataDir), "pglite");
  await mkdir(dir, { recursive: true });
  const unlock = await lockDataDir(dir);
  let pglite: PGlite | RemotePglite;
  try {
    await initPgliteCluster(dir);
    if (inWorker) {
      pglite = new RemotePglite(PGLITE_WORKER, { dataDir: dir, settings: [...PGLITE_SETTINGS], v8Flags: BASELINE_WASM_FLAGS });
      await pglite.waitReady;
    } else {
      useBaselineWasmCompiler();
      // Loaded only here, so a service with the database in a worker or in Postgres does not load it.
      const { PGlite } = await import("@electric-sql/pglite");
      pglite = new PGlite({
        dataDir: dir,
        parsers: pgliteParsers,
        startParams: [...PGlite.defaultStartParams, ...PGLITE_SETTINGS.flatMap((setting) => ["-c", setting])],
      });
    }
  } catch (err) {
    await unlock();
    throw err;
  }
  const db = new Kysely<DatabaseSchema>({ dialect: new PGliteDialect({ pglite }) });
  return {
    db,
    kind: "pglite",
    async close() {
      await db.destroy();
      // destroy() only closes an instance Kysely has used; close it here when it never was.
      if (!pglite.closed) await pglite.close();
      await unlock();
    },
  };
}
