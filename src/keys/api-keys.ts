/**
 * The API key store: creates, changes, lists and revokes keys, and authenticates a presented key
 * (api-key-secret.ts has the format and the hashing). Successful authentications are cached
 * briefly (authentication-cache.ts), so the hot path rarely reaches the database.
 *
 * A key carries the models it may use and its own limits; its tenant may carry limits too
 * (the `tenants` table), applied on top. Both travel on the Principal.
 */
import { randomUUID, timingSafeEqual } from "node:crypto";
import { sql, type Kysely, type RawBuilder } from "kysely";
import type { KeyAuthenticator, Limits, Principal } from "../core/types.js";
import { databaseUnavailable } from "../ledger/database-unavailable.js";
import type { ApiKeyRole, DatabaseSchema } from "../ledger/schema.js";
import { INFO_COLUMNS, TENANT_COLUMNS, modelsFromStored, toInfo, toTenantInfo, type ApiKeyInfo, type TenantInfo } from "./api-key-info.js";
import { keyedHash, newKey, newSalt, parseKeyPrefix, randomPrefix } from "./api-key-secret.js";
import { AuthenticationCache, copyPrincipal } from "./authentication-cache.js";
import { ApiKeyInputError, checkedDate, checkedModels, checkedName } from "./key-input.js";
import { hasNoLimits, limitsFromStored, mergedLimits, storedLimitsPatch, type LimitsPatch } from "./stored-limits.js";

export interface ApiKeyStoreOptions {
  db: Kysely<DatabaseSchema>;
  /**
   * How long a successful authentication is remembered, with the key's models and limits and
   * its tenant's limits. Revoking, disabling or updating a key or a tenant through this store
   * clears the affected entries at once; the same changes made by another process (the keys
   * CLI, another replica) take effect here within this time. Default 30 s.
   */
  cacheTtlMs?: number;
  /** Most cached authentications kept; the oldest go first. Default 10,000. */
  cacheMaxEntries?: number;
  /** The clock, for expiry checks and the cache. */
  now?: () => Date;
}

export interface CreateApiKeyInput {
  name: string;
  tenant: string;
  role?: ApiKeyRole;
  expiresAt?: Date | null;
  /** Model ids or glob patterns (see core/model-access.ts); empty or absent: every model. */
  allowedModels?: readonly string[];
  /** The key's own limits; an absent field is no limit. */
  limits?: Limits;
}

/** A change to a key; what is left out stays as it is. */
export interface UpdateApiKeyInput {
  name?: string;
  /** Replaces the list; an empty list allows every model again. */
  allowedModels?: readonly string[];
  /** Merged into the key's limits. */
  limits?: LimitsPatch;
  /** false disables the key (it stops authenticating); true enables it again. */
  enabled?: boolean;
  /** A new expiry, or null for none. */
  expiresAt?: Date | null;
}

export interface CreatedApiKey extends ApiKeyInfo {
  /** The full key to present (`llm_<prefix>_<secret>`). Not stored: show it once. */
  secret: string;
}

const UNIQUE_VIOLATION = "23505";

function isUniqueViolation(err: unknown): boolean {
  return typeof err === "object" && err !== null && "code" in err && (err as { code: unknown }).code === UNIQUE_VIOLATION;
}

export class ApiKeyStore implements KeyAuthenticator {
  readonly #db: Kysely<DatabaseSchema>;
  readonly #now: () => Date;
  readonly #cache: AuthenticationCache;
  /** Hashed against when the prefix is unknown, so that case costs the same as a wrong secret. */
  readonly #dummySalt = newSalt();

  constructor(opts: ApiKeyStoreOptions) {
    this.#db = opts.db;
    this.#cache = new AuthenticationCache(opts.cacheTtlMs ?? 30_000, opts.cacheMaxEntries ?? 10_000);
    this.#now = opts.now ?? (() => new Date());
  }

  async create(input: CreateApiKeyInput): Promise<CreatedApiKey> {
    return this.#insert(this.#db, input);
  }

  /**
   * Creates the key only when the store holds none yet (the development key of a first start), or
   * returns null. Several replicas starting together on one empty database make exactly one: the
   * count and the insert run in one transaction that first takes a lock on `api_keys` which
   * conflicts with itself (SHARE ROW EXCLUSIVE), not with reads, so the others wait, then count 1.
   */
  async createFirst(input: CreateApiKeyInput): Promise<CreatedApiKey | null> {
    return this.#db.transaction().execute(async (trx) => {
      await sql`LOCK TABLE api_keys IN SHARE ROW EXCLUSIVE MODE`.execute(trx);
      const row = await trx
        .selectFrom("api_keys")
        .select((eb) => eb.fn.countAll<string | number | bigint>().as("n"))
        .executeTakeFirstOrThrow();
      return Number(row.n) === 0 ? this.#insert(trx, input) : null;
    });
  }

  async #insert(db: Kysely<DatabaseSchema>, input: CreateApiKeyInput): Promise<CreatedApiKey> {
    const name = checkedName(input.name, "an API key's name");
    const tenant = checkedName(input.tenant, "an API key's tenant");
    const role = input.role ?? "user";
    if (role !== "admin" && role !== "user") throw new ApiKeyInputError(`unknown role ${JSON.stringify(role)}`);
    const expiresAt = checkedDate(input.expiresAt ?? null, "expiresAt");
    const allowedModels = checkedModels(input.allowedModels ?? []);
    const limits = storedLimitsPatch(input.limits ?? {}, "the key's").set;

    for (let attempt = 1; ; attempt++) {
      const id = randomUUID();
      const prefix = randomPrefix();
      const secret = newKey(prefix);
      const salt = newSalt();
      try {
        const row = await db
          .insertInto("api_keys")
          .values({
            id,
            prefix,
            salt: salt.toString("base64url"),
            hash: keyedHash(salt, secret).toString("base64url"),
            name,
            tenant,
            role,
            expires_at: expiresAt,
            revoked_at: null,
            allowed_models: JSON.stringify(allowedModels),
            limits: JSON.stringify(limits),
            disabled_at: null,
          })
          .returning(INFO_COLUMNS)
          .executeTakeFirstOrThrow();
        return { ...toInfo(row), secret };
      } catch (err) {
        // A prefix collision (about 1 in 2^51 per pair of keys): draw another.
        if (!isUniqueViolation(err) || attempt >= 3) throw err;
      }
    }
  }

  /**
   * Changes a key, found by id or prefix, in one statement: limits are merged (see LimitsPatch),
   * everything left out stays. Returns the key as it now is, or null when there is no such key.
   * This process's cached authentications of the key are dropped at once.
   */
  async update(idOrPrefix: string, changes: UpdateApiKeyInput): Promise<ApiKeyInfo | null> {
    const set: {
      name?: string;
      allowed_models?: string;
      limits?: RawBuilder<string>;
      disabled_at?: Date | null | RawBuilder<Date>;
      expires_at?: Date | null;
    } = {};
    if (changes.name !== undefined) set.name = checkedName(changes.name, "an API key's name");
    if (changes.allowedModels !== undefined) set.allowed_models = JSON.stringify(checkedModels(changes.allowedModels));
    if (changes.limits !== undefined) {
      const patch = storedLimitsPatch(changes.limits, "the key's");
      if (Object.keys(patch.set).length > 0 || patch.clear.length > 0) set.limits = mergedLimits("limits", patch);
    }
    if (changes.enabled !== undefined) {
      if (typeof changes.enabled !== "boolean") throw new ApiKeyInputError("enabled must be true or false");
      // Disabling twice keeps the first time, as revoking does.
      set.disabled_at = changes.enabled ? null : sql<Date>`coalesce(${sql.ref("disabled_at")}, ${this.#now()})`;
    }
    if (changes.expiresAt !== undefined) set.expires_at = checkedDate(changes.expiresAt, "expiresAt");

    const matches = this.#db
      .selectFrom("api_keys")
      .select(INFO_COLUMNS)
      .where((eb) => eb.or([eb("id", "=", idOrPrefix), eb("prefix", "=", idOrPrefix)]));
    const row =
      Object.keys(set).length === 0
        ? await matches.executeTakeFirst()
        : await this.#db
            .updateTable("api_keys")
            .set(set)
            .where((eb) => eb.or([eb("id", "=", idOrPrefix), eb("prefix", "=", idOrPrefix)]))
            .returning(INFO_COLUMNS)
            .executeTakeFirst();
    if (row === undefined) return null;
    this.#cache.forgetKey(row.id);
    return toInfo(row);
  }

  /**
   * Merges a change into a tenant's limits (see LimitsPatch), creating its row when it has none,
   * in one statement. The tenant's keys in this process's cache authenticate afresh.
   */
  async setTenantLimits(tenant: string, limits: LimitsPatch): Promise<TenantInfo> {
    const name = checkedName(tenant, "a tenant's name");
    const patch = storedLimitsPatch(limits, `tenant ${name}'s`);
    const now = this.#now();
    const row = await this.#db
      .insertInto("tenants")
      .values({ name, limits: JSON.stringify(patch.set), created_at: now, updated_at: now })
      .onConflict((oc) => oc.column("name").doUpdateSet({ limits: mergedLimits("tenants.limits", patch), updated_at: now }))
      .returning(TENANT_COLUMNS)
      .executeTakeFirstOrThrow();
    this.#cache.forgetTenant(name);
    return toTenantInfo(row);
  }

  /** A tenant's limits, or null when it has never had any set. */
  async getTenant(tenant: string): Promise<TenantInfo | null> {
    const row = await this.#db.selectFrom("tenants").select(TENANT_COLUMNS).where("name", "=", tenant.trim()).executeTakeFirst();
    return row === undefined ? null : toTenantInfo(row);
  }

  /** Every tenant that has (or had) limits of its own, by name. */
  async listTenants(): Promise<TenantInfo[]> {
    const rows = await this.#db.selectFrom("tenants").select(TENANT_COLUMNS).orderBy("name").execute();
    return rows.map(toTenantInfo);
  }

  /** Every key, oldest first, without secrets or hashes. */
  async list(): Promise<ApiKeyInfo[]> {
    const rows = await this.#db.selectFrom("api_keys").select(INFO_COLUMNS).orderBy("created_at").orderBy("id").execute();
    return rows.map(toInfo);
  }

  /** How many keys exist, revoked and expired ones included. */
  async count(): Promise<number> {
    const row = await this.#db
      .selectFrom("api_keys")
      .select((eb) => eb.fn.countAll<string | number | bigint>().as("n"))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /**
   * Revokes a key by id or prefix. Returns the key (with its revocation time; revoking
   * twice keeps the first time), or null when there is no such key.
   */
  async revoke(idOrPrefix: string): Promise<ApiKeyInfo | null> {
    const revoked = await this.#db
      .updateTable("api_keys")
      .set({ revoked_at: this.#now() })
      .where((eb) => eb.or([eb("id", "=", idOrPrefix), eb("prefix", "=", idOrPrefix)]))
      .where("revoked_at", "is", null)
      .returning(INFO_COLUMNS)
      .executeTakeFirst();
    const row =
      revoked ??
      (await this.#db
        .selectFrom("api_keys")
        .select(INFO_COLUMNS)
        .where((eb) => eb.or([eb("id", "=", idOrPrefix), eb("prefix", "=", idOrPrefix)]))
        .executeTakeFirst());
    if (row === undefined) return null;
    this.#cache.forgetKey(row.id);
    return toInfo(row);
  }

  async authenticate(secret: string): Promise<Principal | null> {
    const prefix = parseKeyPrefix(secret);
    if (prefix === null) return null;
    const now = this.#now().getTime();

    const cacheKey = this.#cache.keyOf(secret);
    const cached = this.#cache.get(cacheKey, now);
    if (cached !== undefined) return cached;

    // One parameterised query: the key and its tenant's limits (no tenants row: no tenant limits).
    // A key not in the cache cannot be checked while the database is unreachable: UNAVAILABLE, retry shortly.
    const row = await this.#db
      .selectFrom("api_keys")
      .leftJoin("tenants", "tenants.name", "api_keys.tenant")
      .select([
        "api_keys.id",
        "api_keys.salt",
        "api_keys.hash",
        "api_keys.name",
        "api_keys.tenant",
        "api_keys.role",
        "api_keys.expires_at",
        "api_keys.revoked_at",
        "api_keys.disabled_at",
        "api_keys.allowed_models",
        "api_keys.limits",
        "tenants.limits as tenant_limits",
      ])
      .where("api_keys.prefix", "=", prefix)
      .executeTakeFirst()
      .catch((err: unknown) => {
        throw databaseUnavailable("the API key cannot be checked", err);
      });
    const salt = row === undefined ? this.#dummySalt : Buffer.from(row.salt, "base64url");
    const presented = keyedHash(salt, secret);
    if (row === undefined) return null;
    const stored = Buffer.from(row.hash, "base64url");
    if (stored.length !== presented.length || !timingSafeEqual(stored, presented)) return null;
    if (row.revoked_at !== null || row.disabled_at !== null) return null;
    const expiresAt = row.expires_at?.getTime() ?? Number.POSITIVE_INFINITY;
    if (expiresAt <= now) return null;

    const whose = `API key ${row.id}`;
    const principal: Principal = { keyId: row.id, name: row.name, tenant: row.tenant, role: row.role };
    // Empty lists and limits are left out: absent means every model, no limit.
    const allowedModels = modelsFromStored(row.allowed_models, whose);
    if (allowedModels.length > 0) principal.allowedModels = allowedModels;
    const limits = limitsFromStored(row.limits, whose);
    if (!hasNoLimits(limits)) principal.limits = limits;
    if (row.tenant_limits !== null) {
      const tenantLimits = limitsFromStored(row.tenant_limits, `tenant ${row.tenant}`);
      if (!hasNoLimits(tenantLimits)) principal.tenantLimits = tenantLimits;
    }
    this.#cache.remember(cacheKey, principal, now, expiresAt);
    return copyPrincipal(principal);
  }
}

