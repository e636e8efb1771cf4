/**
 * `npm run keys -- create --name NAME [--tenant T] [--role admin|user] [--expires-in-days N]`,
 * `list`, `revoke <id|prefix>`: manage API keys in the ledger database.
 */
import { realpathSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { ApiKeyStore, type ApiKeyInfo } from "../ledger/api-keys.js";
import { ConfigError, loadConfig } from "../config.js";
import { openDatabase, type Database, type DatabaseOptions } from "../ledger/database.js";
import type { ApiKeyRole } from "../ledger/schema.js";

/**
 * Where the keys live: `DATABASE_URL` (Postgres) or PGlite under `DATA_DIR` (default `./.data`),
 * read and validated by the service's own config loader.
 */
export function cliDatabaseOptions(env: Record<string, string | undefined> = process.env): DatabaseOptions {
  const config = loadConfig(env);
  return config.databaseUrl ? { databaseUrl: config.databaseUrl, dataDir: config.dataDir } : { dataDir: config.dataDir };
}

export const KEYS_USAGE = `usage: npm run keys -- <command>

commands:
  create --name NAME [--tenant TENANT] [--role admin|user] [--expires-in-days N]
                         create a key and print its secret (once)
  list                   list keys (never their secrets)
  revoke <id|prefix>     revoke a key

environment: DATABASE_URL (Postgres) or DATA_DIR (embedded database, default ./.data)`;

export type KeysCommand =
  | { kind: "help" }
  | { kind: "create"; name: string; tenant: string; role: ApiKeyRole; expiresInDays: number | null }
  | { kind: "list" }
  | { kind: "revoke"; idOrPrefix: string };

/** Bad command-line arguments: the message and the usage go to stderr, exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

export function parseKeysArgs(argv: readonly string[]): KeysCommand {
  const [command, ...rest] = argv;
  if (command === undefined) throw new UsageError("missing command");
  if (command === "help" || command === "--help" || command === "-h") return { kind: "help" };
  try {
    switch (command) {
      case "create": {
        const { values, positionals } = parseArgs({
          args: rest,
          strict: true,
          allowPositionals: true,
          options: {
            name: { type: "string" },
            tenant: { type: "string" },
            role: { type: "string" },
            "expires-in-days": { type: "string" },
          },
        });
        if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`);
        const name = values.name?.trim() ?? "";
        if (name === "") throw new UsageError("create needs --name NAME");
        const tenant = values.tenant?.trim() ?? "default";
        if (tenant === "") throw new UsageError("--tenant must not be empty");
        const role = values.role ?? "user";
        if (role !== "admin" && role !== "user") throw new UsageError("--role must be admin or user");
        let expiresInDays: number | null = null;
        if (values["expires-in-days"] !== undefined) {
          const raw = values["expires-in-days"];
          expiresInDays = /^\d+(\.\d+)?$/.test(raw) ? Number(raw) : Number.NaN;
          if (!(expiresInDays > 0)) throw new UsageError("--expires-in-days must be a positive number");
        }
        return { kind: "create", name, tenant, role, expiresInDays };
      }
      case "list": {
        const { positionals } = parseArgs({ args: rest, strict: true, allowPositionals: true, options: {} });
        if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`);
        return { kind: "list" };
      }
      case "revoke": {
        const { positionals } = parseArgs({ args: rest, strict: true, allowPositionals: true, options: {} });
        if (positionals.length !== 1 || positionals[0]!.trim() === "") throw new UsageError("revoke needs exactly one <id|prefix>");
        return { kind: "revoke", idOrPrefix: positionals[0]!.trim() };
      }
      default:
        throw new UsageError(`unknown command ${command}`);
    }
  } catch (err) {
    if (err instanceof UsageError) throw err;
    // parseArgs throws TypeErrors for unknown or malformed options.
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}

export interface KeysCliIo {
  out(line: string): void;
  err(line: string): void;
  now?(): Date;
}

function status(key: ApiKeyInfo, now: Date): string {
  if (key.revokedAt !== null) return "revoked";
  if (key.expiresAt !== null && key.expiresAt.getTime() <= now.getTime()) return "expired";
  return "active";
}

/** Plain aligned columns, for a terminal. */
export function formatKeyTable(keys: readonly ApiKeyInfo[], now: Date): string {
  const header = ["ID", "PREFIX", "NAME", "TENANT", "ROLE", "CREATED", "EXPIRES", "STATUS"];
  const rows = keys.map((k) => [
    k.id,
    k.prefix,
    k.name,
    k.tenant,
    k.role,
    k.createdAt.toISOString(),
    k.expiresAt?.toISOString() ?? "never",
    status(k, now),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [header, ...rows].map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n");
}

type DatabaseCommand = Exclude<KeysCommand, { kind: "help" }>;

async function execute(command: DatabaseCommand, store: ApiKeyStore, io: KeysCliIo, now: Date): Promise<number> {
  switch (command.kind) {
    case "create": {
      const expiresAt =
        command.expiresInDays === null ? null : new Date(now.getTime() + command.expiresInDays * 86_400_000);
      const key = await store.create({ name: command.name, tenant: command.tenant, role: command.role, expiresAt });
      io.out(`Created API key ${key.id} (prefix ${key.prefix}) for tenant ${key.tenant}, role ${key.role}.`);
      io.out(`Expires: ${key.expiresAt?.toISOString() ?? "never"}`);
      io.out("Secret (store it now, it will not be shown again):");
      io.out(key.secret);
      return 0;
    }
    case "list": {
      const keys = await store.list();
      io.out(keys.length === 0 ? "No API keys." : formatKeyTable(keys, now));
      return 0;
    }
    case "revoke": {
      const key = await store.revoke(command.idOrPrefix);
      if (key === null) {
        io.err(`error: no API key with id or prefix ${command.idOrPrefix}`);
        return 1;
      }
      io.out(`Revoked API key ${key.id} (prefix ${key.prefix}) at ${key.revokedAt?.toISOString() ?? "?"}.`);
      return 0;
    }
  }
}

/** Runs one command and returns the process exit code (0 ok, 1 failed, 2 bad arguments). */
export async function runKeysCli(
  argv: readonly string[],
  io: KeysCliIo,
  open: () => Promise<Database>,
): Promise<number> {
  let command: KeysCommand;
  try {
    command = parseKeysArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.err(`error: ${err.message}`);
    io.err(KEYS_USAGE);
    return 2;
  }
  if (command.kind === "help") {
    io.out(KEYS_USAGE);
    return 0;
  }

  let database: Database | undefined;
  try {
    database = await open();
    // After opening: starting the embedded database can take seconds, and expiry counts from now.
    const now = io.now?.() ?? new Date();
    return await execute(command, new ApiKeyStore({ db: database.db }), io, now);
  } catch (err) {
    io.err(`error: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  } finally {
    await database?.close();
  }
}

function isMain(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(entry)).href;
  } catch {
    return false;
  }
}

if (isMain()) {
  let options: DatabaseOptions | undefined;
  try {
    options = cliDatabaseOptions();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`keys: bad configuration: ${err.message}\n`);
    process.exitCode = 2;
  }
  if (options) {
    const opened = options;
    process.exitCode = await runKeysCli(
      process.argv.slice(2),
      { out: (line) => process.stdout.write(`${line}\n`), err: (line) => process.stderr.write(`${line}\n`) },
      () => openDatabase(opened),
    );
  }
}
