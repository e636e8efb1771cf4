/** Opens the ledger database: Postgres when a URL is given, otherwise PGlite persisted on disk. */
import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { Kysely, PGliteDialect, PostgresDialect } from "kysely";
import pg from "pg";
import { acquirePidLock } from "../core/pid-lock.js";
import { migrateToLatest } from "./migrations.js";
import type { DatabaseSchema } from "./schema.js";

export interface DatabaseOptions {
  /** `postgres://…`; when absent the embedded PGlite database is used. */
  databaseUrl?: string;
  /** Where PGlite keeps its files (in a `pglite` folder inside it). */
  dataDir: string;
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
const pgTypes: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    (oid === INT8_OID || oid === NUMERIC_OID) && format !== "binary"
      ? (value: string) => value
      : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig["getTypeParser"],
};

/** PGlite parses int8 to a Number by default (lossy past 2^53); keep it a string, as node-postgres does. */
const pgliteParsers = {
  [INT8_OID]: (value: string) => value,
  [NUMERIC_OID]: (value: string) => value,
};

/** Opens the database and brings its schema up to date before returning. */
export async function openDatabase(opts: DatabaseOptions, hooks: DatabaseHooks = {}): Promise<Database> {
  const opened = opts.databaseUrl ? openPostgres(opts.databaseUrl, hooks) : await openPglite(opts.dataDir);
  try {
    await migrateToLatest(opened.db);
  } catch (err) {
    await opened.close().catch(() => undefined);
    throw err;
  }
  return opened;
}

function openPostgres(databaseUrl: string, hooks: DatabaseHooks): Database {
  const pool = new pg.Pool({ connectionString: databaseUrl, types: pgTypes });
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

async function openPglite(dataDir: string): Promise<Database> {
  const dir = join(resolve(dataDir), "pglite");
  await mkdir(dir, { recursive: true });
  const unlock = await lockDataDir(dir);
  let pglite: PGlite;
  try {
    pglite = new PGlite({ dataDir: dir, parsers: pgliteParsers });
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
