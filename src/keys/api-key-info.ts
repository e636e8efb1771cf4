/** What may be shown about an API key or a tenant, read from their rows: never a secret or a hash. */
import type { Limits } from "../core/types.js";
import type { ApiKeyRole, ApiKeyRow, TenantRow } from "../ledger/schema.js";
import { limitsFromStored } from "./stored-limits.js";

/** What may be shown about a key: never its secret or hash. */
export interface ApiKeyInfo {
  id: string;
  prefix: string;
  name: string;
  tenant: string;
  role: ApiKeyRole;
  createdAt: Date;
  expiresAt: Date | null;
  revokedAt: Date | null;
  /** Empty: every model. */
  allowedModels: string[];
  limits: Limits;
  /** When the key was disabled, or null while it is enabled. */
  disabledAt: Date | null;
}

/** A tenant that has limits of its own. */
export interface TenantInfo {
  name: string;
  limits: Limits;
  createdAt: Date;
  updatedAt: Date;
}

export const INFO_COLUMNS = [
  "id",
  "prefix",
  "name",
  "tenant",
  "role",
  "created_at",
  "expires_at",
  "revoked_at",
  "allowed_models",
  "limits",
  "disabled_at",
] as const;
export const TENANT_COLUMNS = ["name", "limits", "created_at", "updated_at"] as const;

export function modelsFromStored(stored: unknown, whose: string): string[] {
  if (!Array.isArray(stored) || !stored.every((m): m is string => typeof m === "string")) {
    throw new Error(`stored allowed models of ${whose} are not a JSON array of strings`);
  }
  return [...stored];
}

type InfoRow = Omit<ApiKeyRow, "salt" | "hash">;

export function toInfo(row: InfoRow): ApiKeyInfo {
  const whose = `API key ${row.id}`;
  return {
    id: row.id,
    prefix: row.prefix,
    name: row.name,
    tenant: row.tenant,
    role: row.role,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
    allowedModels: modelsFromStored(row.allowed_models, whose),
    limits: limitsFromStored(row.limits, whose),
    disabledAt: row.disabled_at,
  };
}

export function toTenantInfo(row: TenantRow): TenantInfo {
  return {
    name: row.name,
    limits: limitsFromStored(row.limits, `tenant ${row.name}`),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}
