/**
 * `npm run keys -- create|update|list|revoke|tenant|tenants`: manage API keys, the models they
 * may use and their limits, and tenants' limits, in the ledger database. See KEYS_USAGE.
 */
import { realpathSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import type { ApiKeyInfo, TenantInfo } from "../keys/api-key-info.js";
import { ApiKeyStore, type UpdateApiKeyInput } from "../keys/api-keys.js";
import type { LimitsPatch } from "../keys/stored-limits.js";
import { ConfigError, loadConfig } from "../config.js";
import { modelPatternsProblem, normalizeModelPatterns } from "../core/model-access.js";
import type { Limits } from "../core/types.js";
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
         [--models LIST] [LIMITS]
                         create a key and print its secret (once)
  update <id|prefix> [--name NAME] [--models LIST] [LIMITS] [--clear FIELDS]
         [--enable | --disable] [--expires-in-days N | --no-expiry]
                         change a key; what is not given stays as it is
  list                   list keys with their models and limits (never their secrets)
  revoke <id|prefix>     revoke a key for good (--disable can be undone)
  tenant <name> [LIMITS] [--clear FIELDS]
                         set a tenant's limits (applied on top of its keys' own) and print them
  tenants                list the tenants that have limits

LIMITS (absent: no limit):
  --rpm N                requests per minute
  --tpm N                tokens (input + output) per minute
  --concurrency N        requests in flight at once
  --budget-day USD       spend per UTC day, in dollars (e.g. 12.50; up to 9 decimals)
  --budget-month USD     spend per UTC month, in dollars
  --models LIST          comma-separated model ids or patterns, * matching anything
                         (e.g. gpt-4o*,sim/*); absent: every model
  --clear FIELDS         comma-separated limits to remove: rpm,tpm,concurrency,budget-day,
                         budget-month; on update also models (every model allowed again)

Changes made here reach a running server within its key cache time (30 s).

environment: DATABASE_URL (Postgres) or DATA_DIR (embedded database, default ./.data)`;

/** A key's changes as given on the command line. */
export interface KeyChanges {
  name?: string;
  /** Empty: every model again (`--clear models`). */
  allowedModels?: string[];
  limits?: LimitsPatch;
  enabled?: boolean;
  /** Days from now, or null to remove the expiry (`--no-expiry`). */
  expiresInDays?: number | null;
}

export type KeysCommand =
  | { kind: "help" }
  | {
      kind: "create";
      name: string;
      tenant: string;
      role: ApiKeyRole;
      expiresInDays: number | null;
      allowedModels?: string[];
      limits?: Limits;
    }
  | { kind: "update"; idOrPrefix: string; changes: KeyChanges }
  | { kind: "list" }
  | { kind: "revoke"; idOrPrefix: string }
  /** Without limits: show the tenant's limits. */
  | { kind: "tenant"; tenant: string; limits?: LimitsPatch }
  | { kind: "tenants" };

/** Bad command-line arguments: the message and the usage go to stderr, exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** The limit flags, the Limits field each sets, and how its value is written. */
const LIMIT_FLAGS = [
  { flag: "rpm", field: "requestsPerMinute", kind: "count" },
  { flag: "tpm", field: "tokensPerMinute", kind: "count" },
  { flag: "concurrency", field: "concurrentRequests", kind: "count" },
  { flag: "budget-day", field: "budgetUsdNanosPerDay", kind: "usd" },
  { flag: "budget-month", field: "budgetUsdNanosPerMonth", kind: "usd" },
] as const satisfies readonly { flag: string; field: keyof Limits; kind: "count" | "usd" }[];

const LIMIT_OPTIONS = {
  rpm: { type: "string" },
  tpm: { type: "string" },
  concurrency: { type: "string" },
  "budget-day": { type: "string" },
  "budget-month": { type: "string" },
} as const;

const NANOS_PER_USD = 1_000_000_000n;

/** Exact decimal dollars ("12.50", "0.000000001") to nanos; no floating point on the way. */
export function parseUsd(raw: string): bigint | null {
  const match = /^(\d+)(?:\.(\d{1,9}))?$/.exec(raw.trim());
  if (match === null) return null;
  return BigInt(match[1]!) * NANOS_PER_USD + BigInt((match[2] ?? "").padEnd(9, "0"));
}

/** Nanos as dollars with at least two decimals and no trailing zeros past them: "$12.50", "$0.000000001". */
export function formatUsd(nanos: bigint): string {
  const sign = nanos < 0n ? "-" : "";
  const abs = nanos < 0n ? -nanos : nanos;
  const fraction = (abs % NANOS_PER_USD).toString().padStart(9, "0").replace(/0+$/, "").padEnd(2, "0");
  return `${sign}$${abs / NANOS_PER_USD}.${fraction}`;
}

function parseCount(flag: string, raw: string): number {
  const value = /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : Number.NaN;
  if (!Number.isSafeInteger(value) || value <= 0) throw new UsageError(`--${flag} must be a positive whole number`);
  return value;
}

function parseModels(raw: string): string[] {
  const models = normalizeModelPatterns(raw.split(","));
  const problem = modelPatternsProblem(models);
  if (problem !== undefined) throw new UsageError(`--models: ${problem}`);
  return models;
}

function parseExpiresInDays(raw: string): number {
  const days = /^\d+(\.\d+)?$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(days > 0)) throw new UsageError("--expires-in-days must be a positive number");
  return days;
}

type LimitValues = { [F in (typeof LIMIT_FLAGS)[number]["flag"]]?: string };

/** The limits given by flags, and `--clear`ed ones as null. `clearable` is what --clear accepts besides limits. */
function parseLimits(values: LimitValues, clearRaw: string | undefined, clearable: readonly string[] = []): {
  limits: LimitsPatch;
  cleared: Set<string>;
} {
  const cleared = new Set<string>();
  if (clearRaw !== undefined) {
    const known = [...LIMIT_FLAGS.map((l) => l.flag), ...clearable];
    for (const item of clearRaw.split(",").map((f) => f.trim())) {
      if (!known.includes(item)) {
        throw new UsageError(`--clear takes a comma-separated list of ${known.join(", ")}; got ${JSON.stringify(item)}`);
      }
      cleared.add(item);
    }
  }
  const limits: LimitsPatch = {};
  for (const { flag, field, kind } of LIMIT_FLAGS) {
    const raw = values[flag];
    if (raw !== undefined && cleared.has(flag)) throw new UsageError(`--${flag} cannot be both set and cleared`);
    if (cleared.has(flag)) {
      limits[field] = null;
    } else if (raw === undefined) {
      continue;
    } else if (kind === "count") {
      limits[field] = parseCount(flag, raw);
    } else {
      const nanos = parseUsd(raw);
      if (nanos === null) throw new UsageError(`--${flag} must be an amount of dollars such as 12.50 (up to 9 decimals)`);
      limits[field] = nanos;
    }
  }
  return { limits, cleared };
}

function noPositionals(positionals: readonly string[]): void {
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`);
}

function onePositional(positionals: readonly string[], what: string): string {
  if (positionals.length !== 1 || positionals[0]!.trim() === "") {
    throw new UsageError(`${what} needs exactly one ${what === "tenant" ? "<name>" : "<id|prefix>"}`);
  }
  return positionals[0]!.trim();
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
            models: { type: "string" },
            ...LIMIT_OPTIONS,
          },
        });
        noPositionals(positionals);
        const name = values.name?.trim() ?? "";
        if (name === "") throw new UsageError("create needs --name NAME");
        const tenant = values.tenant?.trim() ?? "default";
        if (tenant === "") throw new UsageError("--tenant must not be empty");
        const role = values.role ?? "user";
        if (role !== "admin" && role !== "user") throw new UsageError("--role must be admin or user");
        const raw = values["expires-in-days"];
        const expiresInDays = raw === undefined ? null : parseExpiresInDays(raw);
        const created: KeysCommand = { kind: "create", name, tenant, role, expiresInDays };
        if (values.models !== undefined) created.allowedModels = parseModels(values.models);
        const { limits } = parseLimits(values, undefined);
        if (Object.keys(limits).length > 0) created.limits = limits as Limits;
        return created;
      }
      case "update": {
        const { values, positionals } = parseArgs({
          args: rest,
          strict: true,
          allowPositionals: true,
          options: {
            name: { type: "string" },
            models: { type: "string" },
            clear: { type: "string" },
            enable: { type: "boolean" },
            disable: { type: "boolean" },
            "expires-in-days": { type: "string" },
            "no-expiry": { type: "boolean" },
            ...LIMIT_OPTIONS,
          },
        });
        const idOrPrefix = onePositional(positionals, "update");
        const changes: KeyChanges = {};
        if (values.name !== undefined) {
          changes.name = values.name.trim();
          if (changes.name === "") throw new UsageError("--name must not be empty");
        }
        const { limits, cleared } = parseLimits(values, values.clear, ["models"]);
        if (Object.keys(limits).length > 0) changes.limits = limits;
        if (values.models !== undefined && cleared.has("models")) throw new UsageError("--models cannot be both set and cleared");
        if (values.models !== undefined) changes.allowedModels = parseModels(values.models);
        if (cleared.has("models")) changes.allowedModels = [];
        if (values.enable === true && values.disable === true) throw new UsageError("--enable and --disable exclude each other");
        if (values.enable === true) changes.enabled = true;
        if (values.disable === true) changes.enabled = false;
        const raw = values["expires-in-days"];
        if (raw !== undefined && values["no-expiry"] === true) {
          throw new UsageError("--expires-in-days and --no-expiry exclude each other");
        }
        if (raw !== undefined) changes.expiresInDays = parseExpiresInDays(raw);
        if (values["no-expiry"] === true) changes.expiresInDays = null;
        if (Object.keys(changes).length === 0) throw new UsageError("update needs at least one change");
        return { kind: "update", idOrPrefix, changes };
      }
      case "tenant": {
        const { values, positionals } = parseArgs({
          args: rest,
          strict: true,
          allowPositionals: true,
          options: { clear: { type: "string" }, ...LIMIT_OPTIONS },
        });
        const tenant = onePositional(positionals, "tenant");
        const { limits } = parseLimits(values, values.clear);
        return Object.keys(limits).length > 0 ? { kind: "tenant", tenant, limits } : { kind: "tenant", tenant };
      }
      case "list":
      case "tenants": {
        const { positionals } = parseArgs({ args: rest, strict: true, allowPositionals: true, options: {} });
        noPositionals(positionals);
        return { kind: command };
      }
      case "revoke": {
        const { positionals } = parseArgs({ args: rest, strict: true, allowPositionals: true, options: {} });
        return { kind: "revoke", idOrPrefix: onePositional(positionals, "revoke") };
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
  if (key.disabledAt !== null) return "disabled";
  if (key.expiresAt !== null && key.expiresAt.getTime() <= now.getTime()) return "expired";
  return "active";
}

/** Limits as their flags would set them, e.g. "rpm=60 budget-month=$100.00"; "none" when there are none. */
export function formatLimits(limits: Limits): string {
  const parts: string[] = [];
  for (const { flag, field, kind } of LIMIT_FLAGS) {
    const value = limits[field];
    if (value === undefined) continue;
    parts.push(`${flag}=${kind === "usd" ? formatUsd(BigInt(value)) : String(value)}`);
  }
  return parts.length === 0 ? "none" : parts.join(" ");
}

function formatModels(models: readonly string[]): string {
  return models.length === 0 ? "all" : models.join(",");
}

/** Plain aligned columns, for a terminal. */
function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [header, ...rows].map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n");
}

/** One row per key, its models and limits last; never a secret. */
export function formatKeyTable(keys: readonly ApiKeyInfo[], now: Date): string {
  const header = ["ID", "PREFIX", "NAME", "TENANT", "ROLE", "CREATED", "EXPIRES", "STATUS", "MODELS", "LIMITS"];
  const rows = keys.map((k) => [
    k.id,
    k.prefix,
    k.name,
    k.tenant,
    k.role,
    k.createdAt.toISOString(),
    k.expiresAt?.toISOString() ?? "never",
    status(k, now),
    formatModels(k.allowedModels),
    formatLimits(k.limits),
  ]);
  return formatTable(header, rows);
}

export function formatTenantTable(tenants: readonly TenantInfo[]): string {
  return formatTable(
    ["TENANT", "UPDATED", "LIMITS"],
    tenants.map((t) => [t.name, t.updatedAt.toISOString(), formatLimits(t.limits)]),
  );
}

function describeKey(key: ApiKeyInfo, now: Date, io: KeysCliIo): void {
  io.out(`Models: ${formatModels(key.allowedModels)}`);
  io.out(`Limits: ${formatLimits(key.limits)}`);
  io.out(`Expires: ${key.expiresAt?.toISOString() ?? "never"}`);
  io.out(`Status: ${status(key, now)}`);
}

function expiryFrom(now: Date, days: number): Date {
  return new Date(now.getTime() + days * 86_400_000);
}

type DatabaseCommand = Exclude<KeysCommand, { kind: "help" }>;

async function execute(command: DatabaseCommand, store: ApiKeyStore, io: KeysCliIo, now: Date): Promise<number> {
  switch (command.kind) {
    case "create": {
      const expiresAt = command.expiresInDays === null ? null : expiryFrom(now, command.expiresInDays);
      const key = await store.create({
        name: command.name,
        tenant: command.tenant,
        role: command.role,
        expiresAt,
        allowedModels: command.allowedModels ?? [],
        limits: command.limits ?? {},
      });
      io.out(`Created API key ${key.id} (prefix ${key.prefix}) for tenant ${key.tenant}, role ${key.role}.`);
      describeKey(key, now, io);
      io.out("Secret (store it now, it will not be shown again):");
      io.out(key.secret);
      return 0;
    }
    case "update": {
      const { expiresInDays, ...rest } = command.changes;
      const changes: UpdateApiKeyInput = { ...rest };
      if (expiresInDays !== undefined) changes.expiresAt = expiresInDays === null ? null : expiryFrom(now, expiresInDays);
      const key = await store.update(command.idOrPrefix, changes);
      if (key === null) {
        io.err(`error: no API key with id or prefix ${command.idOrPrefix}`);
        return 1;
      }
      io.out(`Updated API key ${key.id} (prefix ${key.prefix}) "${key.name}" of tenant ${key.tenant}.`);
      describeKey(key, now, io);
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
    case "tenant": {
      const tenant =
        command.limits === undefined
          ? await store.getTenant(command.tenant)
          : await store.setTenantLimits(command.tenant, command.limits);
      io.out(`Tenant ${command.tenant} limits: ${formatLimits(tenant?.limits ?? {})}`);
      return 0;
    }
    case "tenants": {
      const tenants = await store.listTenants();
      io.out(tenants.length === 0 ? "No tenants with limits." : formatTenantTable(tenants));
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
