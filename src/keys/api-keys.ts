/**
 * API keys: `llm_<prefix>_<secret>`. The prefix is a non-secret lookup handle; the database
 * keeps only a per-key random salt and HMAC-SHA256(key = salt, data = the full key string).
 * Successful authentications are cached briefly, keyed by an HMAC of the presented string
 * under a process-random key, so the hot path rarely reaches the database.
 *
 * A key carries the models it may use and its own limits; its tenant may carry limits too
 * (the `tenants` table), applied on top. Both travel on the Principal.
 */
import { createHmac, createSecretKey, randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import { sql, type Kysely, type RawBuilder } from "kysely";
import { modelPatternsProblem, normalizeModelPatterns } from "../core/model-access.js";
import type { KeyAuthenticator, Limits, Principal } from "../core/types.js";
import { databaseUnavailable } from "../ledger/database-unavailable.js";
import type { ApiKeyRole, ApiKeyRow, DatabaseSchema, StoredLimits, TenantRow } from "../ledger/schema.js";

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

/** A change to limits: a field set to a value sets it, set to null removes it, left out stays as it is. */
export type LimitsPatch = { [K in keyof Limits]?: Limits[K] | null };

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

export interface CreatedApiKey extends ApiKeyInfo {
  /** The full key to present (`llm_<prefix>_<secret>`). Not stored: show it once. */
  secret: string;
}

/** A tenant that has limits of its own. */
export interface TenantInfo {
  name: string;
  limits: Limits;
  createdAt: Date;
  updatedAt: Date;
}

/** An invalid name, tenant, role, date, model list or limit given to the store. */
export class ApiKeyInputError extends Error {
  override readonly name = "ApiKeyInputError";
}

const PREFIX_LENGTH = 10;
const PREFIX_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";
const SECRET_BYTES = 32;
const SALT_BYTES = 16;
/** `llm_` + 10 lowercase alphanumerics + `_` + 32 bytes of base64url (43 characters). */
const KEY_PATTERN = /^llm_([a-z0-9]{10})_[A-Za-z0-9_-]{43}$/;
const UNIQUE_VIOLATION = "23505";

/** The prefix of a well-formed key, or null. */
export function parseKeyPrefix(presented: string): string | null {
  return KEY_PATTERN.exec(presented)?.[1] ?? null;
}

function randomPrefix(): string {
  let out = "";
  while (out.length < PREFIX_LENGTH) {
    for (const byte of randomBytes(PREFIX_LENGTH * 2)) {
      // 252 = 7 * 36: rejecting larger bytes keeps every character equally likely.
      if (byte < 252 && out.length < PREFIX_LENGTH) out += PREFIX_ALPHABET[byte % 36];
    }
  }
  return out;
}

function keyedHash(salt: Buffer, presented: string): Buffer {
  return createHmac("sha256", salt).update(presented, "utf8").digest();
}

function isUniqueViolation(err: unknown): boolean {
  return typeof err === "object" && err !== null && "code" in err && (err as { code: unknown }).code === UNIQUE_VIOLATION;
}

/** How each limit is stored in the limits JSON, and what kind of value it takes. */
const LIMIT_FIELDS = [
  { field: "requestsPerMinute", stored: "requests_per_minute", kind: "count" },
  { field: "tokensPerMinute", stored: "tokens_per_minute", kind: "count" },
  { field: "concurrentRequests", stored: "concurrent_requests", kind: "count" },
  { field: "budgetUsdNanosPerDay", stored: "budget_usd_nanos_per_day", kind: "nanos" },
  { field: "budgetUsdNanosPerMonth", stored: "budget_usd_nanos_per_month", kind: "nanos" },
] as const satisfies readonly { field: keyof Limits; stored: keyof StoredLimits; kind: "count" | "nanos" }[];

/** A validated LimitsPatch in storage terms: what to set and which stored fields to remove. */
interface StoredLimitsPatch {
  set: StoredLimits;
  clear: (keyof StoredLimits)[];
}

/**
 * Checks a limits change: counts are positive safe integers, budgets non-negative bigint nanos,
 * null removes a limit. Unknown fields are refused, so a misspelt limit cannot silently be no limit.
 */
function storedLimitsPatch(patch: LimitsPatch, whose: string): StoredLimitsPatch {
  if (typeof patch !== "object" || patch === null) throw new ApiKeyInputError(`${whose} limits must be an object`);
  const known = new Set<string>(LIMIT_FIELDS.map((f) => f.field));
  for (const field of Object.keys(patch)) {
    if (!known.has(field)) throw new ApiKeyInputError(`unknown limit ${JSON.stringify(field)}`);
  }
  const set: Record<string, number | string> = {};
  const clear: (keyof StoredLimits)[] = [];
  for (const { field, stored, kind } of LIMIT_FIELDS) {
    const value: unknown = patch[field];
    if (value === undefined) continue;
    if (value === null) {
      clear.push(stored);
    } else if (kind === "count") {
      if (typeof value !== "number" || !Number.isSafeInteger(value) || value <= 0) {
        throw new ApiKeyInputError(`${whose} ${field} must be a positive integer, got ${String(value)}`);
      }
      set[stored] = value;
    } else {
      if (typeof value !== "bigint" || value < 0n) {
        throw new ApiKeyInputError(`${whose} ${field} must be a non-negative bigint of USD nanos, got ${String(value)}`);
      }
      set[stored] = value.toString();
    }
  }
  return { set: set as StoredLimits, clear };
}

/** Limits read back from the database. Malformed JSON throws: a limit is never silently dropped. */
function limitsFromStored(stored: unknown, whose: string): Limits {
  if (typeof stored !== "object" || stored === null || Array.isArray(stored)) {
    throw new Error(`stored limits of ${whose} are not a JSON object`);
  }
  const json = stored as Record<string, unknown>;
  const limits: Limits = {};
  for (const { field, stored: key, kind } of LIMIT_FIELDS) {
    const value = json[key];
    if (value === undefined || value === null) continue;
    if (kind === "count") {
      if (typeof value !== "number" || !Number.isSafeInteger(value) || value <= 0) {
        throw new Error(`stored limit ${key} of ${whose} is not a positive integer`);
      }
      limits[field] = value;
    } else {
      if (typeof value !== "string" || !/^\d+$/.test(value)) {
        throw new Error(`stored limit ${key} of ${whose} is not a decimal string of nanos`);
      }
      limits[field] = BigInt(value);
    }
  }
  return limits;
}

function modelsFromStored(stored: unknown, whose: string): string[] {
  if (!Array.isArray(stored) || !stored.every((m): m is string => typeof m === "string")) {
    throw new Error(`stored allowed models of ${whose} are not a JSON array of strings`);
  }
  return [...stored];
}

/** Trimmed, deduplicated, and within the limits of core/model-access.ts. */
function checkedModels(models: readonly string[]): string[] {
  const values: readonly unknown[] = models;
  if (!Array.isArray(values) || !values.every((m) => typeof m === "string")) {
    throw new ApiKeyInputError("allowedModels must be an array of model ids or patterns");
  }
  const normalized = normalizeModelPatterns(models);
  const problem = modelPatternsProblem(normalized);
  if (problem !== undefined) throw new ApiKeyInputError(problem);
  return normalized;
}

/** `(column || set) - clear…` : merges a patch into a jsonb limits column in one statement. */
function mergedLimits(column: string, patch: StoredLimitsPatch): RawBuilder<string> {
  let merged = sql<string>`(${sql.ref(column)} || ${JSON.stringify(patch.set)}::jsonb)`;
  for (const key of patch.clear) merged = sql<string>`(${merged} - ${key}::text)`;
  return merged;
}

function checkedName(name: string, what: string): string {
  const trimmed = typeof name === "string" ? name.trim() : "";
  if (trimmed === "") throw new ApiKeyInputError(`${what} must not be empty`);
  return trimmed;
}

function checkedDate(date: Date | null, what: string): Date | null {
  if (date !== null && (!(date instanceof Date) || Number.isNaN(date.getTime()))) {
    throw new ApiKeyInputError(`${what} is not a valid date`);
  }
  return date;
}

function isEmpty(limits: Limits): boolean {
  return Object.keys(limits).length === 0;
}

type InfoRow = Omit<ApiKeyRow, "salt" | "hash">;

function toInfo(row: InfoRow): ApiKeyInfo {
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

function toTenantInfo(row: TenantRow): TenantInfo {
  return {
    name: row.name,
    limits: limitsFromStored(row.limits, `tenant ${row.name}`),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** A copy the caller may change without changing the cached principal. */
function copyPrincipal(principal: Principal): Principal {
  const copy: Principal = { ...principal };
  if (principal.allowedModels !== undefined) copy.allowedModels = [...principal.allowedModels];
  if (principal.limits !== undefined) copy.limits = { ...principal.limits };
  if (principal.tenantLimits !== undefined) copy.tenantLimits = { ...principal.tenantLimits };
  return copy;
}

const INFO_COLUMNS = [
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
const TENANT_COLUMNS = ["name", "limits", "created_at", "updated_at"] as const;

interface CacheEntry {
  principal: Principal;
  /** ms since the epoch: the earlier of the cache TTL and the key's own expiry. */
  until: number;
}

export class ApiKeyStore implements KeyAuthenticator {
  readonly #db: Kysely<DatabaseSchema>;
  readonly #cacheTtlMs: number;
  readonly #cacheMaxEntries: number;
  readonly #now: () => Date;
  /**
   * Keys the cache, so the presented secrets themselves are never held in memory as map keys.
   * A KeyObject: createHmac with a Buffer key builds one on every call (~27 µs; ~4 µs this way).
   */
  readonly #cacheKey = createSecretKey(randomBytes(32));
  readonly #cache = new Map<string, CacheEntry>();
  /** Hashed against when the prefix is unknown, so that case costs the same as a wrong secret. */
  readonly #dummySalt = randomBytes(SALT_BYTES);

  constructor(opts: ApiKeyStoreOptions) {
    this.#db = opts.db;
    this.#cacheTtlMs = opts.cacheTtlMs ?? 30_000;
    this.#cacheMaxEntries = Math.max(0, opts.cacheMaxEntries ?? 10_000);
    this.#now = opts.now ?? (() => new Date());
  }

  async create(input: CreateApiKeyInput): Promise<CreatedApiKey> {
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
      const secret = `llm_${prefix}_${randomBytes(SECRET_BYTES).toString("base64url")}`;
      const salt = randomBytes(SALT_BYTES);
      try {
        const row = await this.#db
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
    this.#forget(row.id);
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
    for (const [cacheKey, entry] of this.#cache) {
      if (entry.principal.tenant === name) this.#cache.delete(cacheKey);
    }
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
    this.#forget(row.id);
    return toInfo(row);
  }

  async authenticate(secret: string): Promise<Principal | null> {
    const prefix = parseKeyPrefix(secret);
    if (prefix === null) return null;
    const now = this.#now().getTime();

    const cacheKey = createHmac("sha256", this.#cacheKey).update(secret, "utf8").digest("base64url");
    const cached = this.#cache.get(cacheKey);
    if (cached !== undefined) {
      if (cached.until > now) return copyPrincipal(cached.principal);
      this.#cache.delete(cacheKey);
    }

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
    if (!isEmpty(limits)) principal.limits = limits;
    if (row.tenant_limits !== null) {
      const tenantLimits = limitsFromStored(row.tenant_limits, `tenant ${row.tenant}`);
      if (!isEmpty(tenantLimits)) principal.tenantLimits = tenantLimits;
    }
    this.#remember(cacheKey, { principal, until: Math.min(now + this.#cacheTtlMs, expiresAt) });
    return copyPrincipal(principal);
  }

  #remember(cacheKey: string, entry: CacheEntry): void {
    if (this.#cacheTtlMs <= 0 || this.#cacheMaxEntries === 0) return;
    this.#cache.delete(cacheKey);
    while (this.#cache.size >= this.#cacheMaxEntries) {
      const oldest = this.#cache.keys().next();
      if (oldest.done === true) break;
      this.#cache.delete(oldest.value);
    }
    this.#cache.set(cacheKey, entry);
  }

  #forget(keyId: string): void {
    for (const [cacheKey, entry] of this.#cache) {
      if (entry.principal.keyId === keyId) this.#cache.delete(cacheKey);
    }
  }
}
