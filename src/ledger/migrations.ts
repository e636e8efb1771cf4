/**
 * Schema migrations, defined in code (no directory scanning, so they ship inside the build).
 * They use only SQL that PGlite and Postgres both run unchanged. Never edit a released
 * migration: add a new one with the next number.
 */
import { sql, type Kysely } from "kysely";
import { Migrator, type Migration, type MigrationProvider } from "kysely/migration";

/** Migrations see the database as it was when they were written, not today's schema type. */
type AnyDatabase = Kysely<unknown>;

export const MIGRATIONS: Readonly<Record<string, Migration>> = {
  "0001_generations": {
    async up(db: AnyDatabase): Promise<void> {
      await db.schema
        .createTable("generations")
        .addColumn("id", "uuid", (c) => c.primaryKey())
        .addColumn("request_id", "text", (c) => c.notNull().unique())
        .addColumn("key_id", "text", (c) => c.notNull())
        .addColumn("tenant", "text", (c) => c.notNull())
        .addColumn("model", "text", (c) => c.notNull())
        .addColumn("provider", "text", (c) => c.notNull())
        .addColumn("status", "text", (c) => c.notNull().check(sql`status in ('ok', 'failed', 'cancelled')`))
        .addColumn("error_reason", "text")
        .addColumn("input_tokens", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("output_tokens", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("cost_usd_nanos", "bigint", (c) => c.notNull().defaultTo(0))
        .addColumn("cached", "boolean", (c) => c.notNull().defaultTo(false))
        .addColumn("attempts", "jsonb", (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
        .addColumn("latency_ms", "integer", (c) => c.notNull())
        .addColumn("time_to_first_token_ms", "integer")
        .addColumn("started_at", "timestamptz", (c) => c.notNull())
        .addColumn("finished_at", "timestamptz", (c) => c.notNull())
        .addColumn("metadata", "jsonb", (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
        .execute();
      await db.schema
        .createIndex("generations_tenant_started_at_idx")
        .on("generations")
        .columns(["tenant", "started_at"])
        .execute();
    },
    async down(db: AnyDatabase): Promise<void> {
      await db.schema.dropTable("generations").execute();
    },
  },
  "0002_api_keys": {
    async up(db: AnyDatabase): Promise<void> {
      await db.schema
        .createTable("api_keys")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("prefix", "text", (c) => c.notNull().unique())
        .addColumn("salt", "text", (c) => c.notNull())
        .addColumn("hash", "text", (c) => c.notNull())
        .addColumn("name", "text", (c) => c.notNull())
        .addColumn("tenant", "text", (c) => c.notNull())
        .addColumn("role", "text", (c) => c.notNull().check(sql`role in ('admin', 'user')`))
        .addColumn("created_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
        .addColumn("expires_at", "timestamptz")
        .addColumn("revoked_at", "timestamptz")
        .execute();
    },
    async down(db: AnyDatabase): Promise<void> {
      await db.schema.dropTable("api_keys").execute();
    },
  },
  "0003_key_limits": {
    async up(db: AnyDatabase): Promise<void> {
      // Budgets inside the limits JSON are decimal strings (nanos), so they survive JSON exactly.
      await db.schema
        .alterTable("api_keys")
        .addColumn("allowed_models", "jsonb", (c) =>
          c.notNull().defaultTo(sql`'[]'::jsonb`).check(sql`jsonb_typeof(allowed_models) = 'array'`),
        )
        .addColumn("limits", "jsonb", (c) =>
          c.notNull().defaultTo(sql`'{}'::jsonb`).check(sql`jsonb_typeof(limits) = 'object'`),
        )
        .addColumn("disabled_at", "timestamptz")
        .execute();
      await db.schema
        .createTable("tenants")
        .addColumn("name", "text", (c) => c.primaryKey())
        .addColumn("limits", "jsonb", (c) =>
          c.notNull().defaultTo(sql`'{}'::jsonb`).check(sql`jsonb_typeof(limits) = 'object'`),
        )
        .addColumn("created_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
        .addColumn("updated_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
        .execute();
    },
    async down(db: AnyDatabase): Promise<void> {
      await db.schema.dropTable("tenants").execute();
      await db.schema
        .alterTable("api_keys")
        .dropColumn("allowed_models")
        .dropColumn("limits")
        .dropColumn("disabled_at")
        .execute();
    },
  },
  "0004_client_request_id": {
    async up(db: AnyDatabase): Promise<void> {
      // request_id stays the unique key, but from now on it is the server's id for the call; the
      // caller's x-request-id moves here, where any number of rows may share it. Rows written
      // before keep whatever request_id they had (the caller's id when it sent one) and null here.
      await db.schema.alterTable("generations").addColumn("client_request_id", "text").execute();
      await db.schema
        .createIndex("generations_client_request_id_idx")
        .on("generations")
        .column("client_request_id")
        .execute();
    },
    async down(db: AnyDatabase): Promise<void> {
      await db.schema.dropIndex("generations_client_request_id_idx").execute();
      await db.schema.alterTable("generations").dropColumn("client_request_id").execute();
    },
  },
  "0005_usage_detail": {
    async up(db: AnyDatabase): Promise<void> {
      // Parts of input_tokens (read from / written to the provider's prompt cache) and of
      // output_tokens (reasoning); rows written before count none.
      await db.schema
        .alterTable("generations")
        .addColumn("cached_input_tokens", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("cache_write_input_tokens", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("reasoning_tokens", "integer", (c) => c.notNull().defaultTo(0))
        .execute();
    },
    async down(db: AnyDatabase): Promise<void> {
      await db.schema
        .alterTable("generations")
        .dropColumn("cached_input_tokens")
        .dropColumn("cache_write_input_tokens")
        .dropColumn("reasoning_tokens")
        .execute();
    },
  },
};

/** Hands the Migrator the in-code migrations above. */
export class InCodeMigrationProvider implements MigrationProvider {
  readonly #migrations: Readonly<Record<string, Migration>>;

  constructor(migrations: Readonly<Record<string, Migration>> = MIGRATIONS) {
    this.#migrations = migrations;
  }

  async getMigrations(): Promise<Record<string, Migration>> {
    return { ...this.#migrations };
  }
}

export function createMigrator<DB>(db: Kysely<DB>): Migrator {
  return new Migrator({ db, provider: new InCodeMigrationProvider() });
}

/**
 * Brings the schema to the latest migration. Returns the names applied by this call
 * (empty when the database was already current); throws when one fails.
 */
export async function migrateToLatest<DB>(db: Kysely<DB>): Promise<string[]> {
  const { error, results } = await createMigrator(db).migrateToLatest();
  if (error !== undefined) {
    const failed = results?.find((r) => r.status === "Error")?.migrationName;
    const detail = error instanceof Error ? error.message : String(error);
    throw new Error(`database migration ${failed ?? "setup"} failed: ${detail}`, { cause: error });
  }
  return (results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName);
}
