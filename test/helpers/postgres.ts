/**
 * Where the ledger tests get their databases. PGlite always runs (one instance per test file, in
 * a temp dir seeded with the run's migrated cluster); real Postgres runs when DATABASE_URL is set (`export "$(scripts/postgres.sh | tail -n1)"`),
 * is skipped with a note when it is not, and fails under CI=true when it is not, so CI cannot pass
 * without having tested against Postgres.
 */
import { randomBytes } from "node:crypto";
import { rm } from "node:fs/promises";
import type { Kysely } from "kysely";
import pg from "pg";
import { afterAll, beforeAll, describe, it } from "vitest";
import { openDatabase, type Database, type DatabaseKind, type DatabaseOptions } from "../../src/ledger/database.js";
import type { DatabaseSchema } from "../../src/ledger/schema.js";
import { seededDataDir } from "./pglite-template.js";

/** PGlite takes several seconds to start on these machines, more when test files run in parallel. */
export const DATABASE_HOOK_TIMEOUT_MS = 60_000;

/**
 * A describe() whose body needs a real Postgres server; the body gets DATABASE_URL.
 * Without it the suite is skipped (its name says why) or, under CI=true, fails.
 */
export function describeWithPostgres(name: string, body: (databaseUrl: string) => void): void {
  const url = process.env["DATABASE_URL"];
  if (url !== undefined && url !== "") {
    describe(name, () => body(url));
  } else if (process.env["CI"] === "true") {
    describe(name, () => {
      it("has a Postgres server to run against", () => {
        throw new Error(
          "DATABASE_URL is not set and CI=true: the Postgres tests must run in CI. " +
            'Start a server with `export "$(scripts/postgres.sh | tail -n1)"`.',
        );
      });
    });
  } else {
    console.warn(`${name}: skipped, DATABASE_URL is not set (start Postgres with scripts/postgres.sh)`);
    describe.skip(`${name} [skipped: DATABASE_URL is not set; export "$(scripts/postgres.sh | tail -n1)" to run]`, () =>
      body(""),
    );
  }
}

/** A fresh, empty database on the server at `url`, dropped again by `drop()`. */
export async function createScratchDatabase(url: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `llm_test_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const scratch = new URL(url);
  scratch.pathname = `/${name}`;
  return {
    url: scratch.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

/** A database opened (and migrated) before the suite's tests and removed after them. */
export interface TestDatabase {
  readonly kind: DatabaseKind;
  /** Usable inside tests and hooks, not while the suite is being collected. */
  readonly db: Kysely<DatabaseSchema>;
  /** Options that open this same database again (close the first handle before reopening PGlite). */
  readonly options: DatabaseOptions;
  /** Closes the handle (idempotent); the data stays until the suite ends. */
  close(): Promise<void>;
}

function useDatabase(kind: DatabaseKind, databaseUrl: string): TestDatabase {
  let opened: Database | undefined;
  let options: DatabaseOptions | undefined;
  let cleanup: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    if (kind === "pglite") {
      const dataDir = seededDataDir("llm-ledger-test-");
      options = { dataDir };
      cleanup = () => rm(dataDir, { recursive: true, force: true });
    } else {
      const scratch = await createScratchDatabase(databaseUrl);
      options = { databaseUrl: scratch.url, dataDir: "(unused with Postgres)" };
      cleanup = () => scratch.drop();
    }
    opened = await openDatabase(options);
  }, DATABASE_HOOK_TIMEOUT_MS);

  afterAll(async () => {
    await opened?.close();
    opened = undefined;
    await cleanup?.();
  }, DATABASE_HOOK_TIMEOUT_MS);

  return {
    kind,
    get db() {
      if (opened === undefined) throw new Error("the test database is not open (used outside a test?)");
      return opened.db;
    },
    get options() {
      if (options === undefined) throw new Error("the test database is not set up yet");
      return options;
    },
    async close() {
      const handle = opened;
      opened = undefined;
      await handle?.close();
    },
  };
}

/** Runs the same suite against PGlite and (see describeWithPostgres) a scratch database on real Postgres. */
export function describeEachDatabase(name: string, body: (database: TestDatabase) => void): void {
  describe(`${name} [pglite]`, () => body(useDatabase("pglite", "")));
  describeWithPostgres(`${name} [postgres]`, (url) => body(useDatabase("postgres", url)));
}
