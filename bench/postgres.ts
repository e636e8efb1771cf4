/**
 * A throwaway Postgres database for the everything-on gateway, on the server of the caller's
 * DATABASE_URL (never that database itself: tests may be using it), dropped at the end.
 */
import pg from "pg";
import { log } from "./procs.ts";

export interface BenchDatabase {
  url: string;
  drop(): Promise<void>;
}

/** `llm_bench_<pid>` on the server of `serverUrl`; undefined (and a log line) when that fails. */
export async function benchDatabase(serverUrl: string | undefined): Promise<BenchDatabase | undefined> {
  if (!serverUrl) return undefined;
  const name = `llm_bench_${process.pid}`;
  const admin = async (sql: string): Promise<void> => {
    const client = new pg.Client({ connectionString: serverUrl, connectionTimeoutMillis: 10_000 });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  try {
    await admin(`DROP DATABASE IF EXISTS ${name}`);
    await admin(`CREATE DATABASE ${name}`);
  } catch (err) {
    log(`Postgres: could not create ${name} (${(err as Error).message}); the everything-on gateway keeps PGlite`);
    return undefined;
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  log(`Postgres: database ${name} for the everything-on gateway`);
  return {
    url: url.toString(),
    drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch((err: Error) => log(`Postgres: could not drop ${name}: ${err.message}`)),
  };
}
