/** What the keys CLI prints: keys and tenants as aligned tables or as a few lines, limits as their flags. */
import type { Limits } from "../../core/types.js";
import type { ApiKeyInfo, TenantInfo } from "../../keys/api-key-info.js";
import { LIMIT_FLAGS } from "./limit-flags.js";
import { formatUsd } from "./usd.js";

/** Where the CLI writes its lines (stdout, stderr), and its clock. */
export interface KeysCliIo {
  out(line: string): void;
  err(line: string): void;
  now?(): Date;
}

/** A key's state at `now`: revoked, disabled, expired or active. */
export function status(key: ApiKeyInfo, now: Date): string {
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

export function describeKey(key: ApiKeyInfo, now: Date, io: KeysCliIo): void {
  io.out(`Models: ${formatModels(key.allowedModels)}`);
  io.out(`Limits: ${formatLimits(key.limits)}`);
  io.out(`Expires: ${key.expiresAt?.toISOString() ?? "never"}`);
  io.out(`Status: ${status(key, now)}`);
}

