/** Each keys CLI command, run against the key store; returns the exit code. */
import type { ApiKeyStore, UpdateApiKeyInput } from "../../keys/api-keys.js";
import type { KeysCommand } from "./arguments.js";
import { describeKey, formatKeyTable, formatLimits, formatTenantTable, type KeysCliIo } from "./output.js";

function expiryFrom(now: Date, days: number): Date {
  return new Date(now.getTime() + days * 86_400_000);
}

/** Every command but help: each needs the key store. */
export type DatabaseCommand = Exclude<KeysCommand, { kind: "help" }>;

export async function execute(command: DatabaseCommand, store: ApiKeyStore, io: KeysCliIo, now: Date): Promise<number> {
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

