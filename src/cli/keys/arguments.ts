/** The keys CLI's command line, parsed and checked into a KeysCommand. */
import { parseArgs } from "node:util";
import { modelPatternsProblem, normalizeModelPatterns } from "../../core/model-access.js";
import type { Limits } from "../../core/types.js";
import type { LimitsPatch } from "../../keys/stored-limits.js";
import type { ApiKeyRole } from "../../ledger/schema.js";
import { LIMIT_FLAGS, LIMIT_OPTIONS } from "./limit-flags.js";
import { UsageError } from "./usage.js";
import { parseUsd } from "./usd.js";

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
