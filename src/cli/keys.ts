/**
 * `npm run keys -- create|update|list|revoke|tenant|tenants`: manage API keys, the models they
 * may use and their limits, and tenants' limits, in the ledger database. See KEYS_USAGE (keys/usage.ts).
 * This file is the program: it reads the config, opens the database and runs one command. keys/ holds
 * its parts: the arguments, the commands against the key store, and the output.
 */
import { realpathSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { ApiKeyStore } from "../keys/api-keys.js";
import { ConfigError, loadConfig } from "../config.js";
import { openDatabase, type Database, type DatabaseOptions } from "../ledger/database.js";
import { parseKeysArgs, type KeysCommand } from "./keys/arguments.js";
import { execute } from "./keys/commands.js";
import type { KeysCliIo } from "./keys/output.js";
import { KEYS_USAGE, UsageError } from "./keys/usage.js";

/**
 * Where the keys live: `DATABASE_URL` (Postgres) or PGlite under `DATA_DIR` (default `./.data`),
 * read and validated by the service's own config loader.
 */
export function cliDatabaseOptions(env: Record<string, string | undefined> = process.env): DatabaseOptions {
  const config = loadConfig(env);
  return config.databaseUrl ? { databaseUrl: config.databaseUrl, dataDir: config.dataDir } : { dataDir: config.dataDir };
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

