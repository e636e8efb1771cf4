/**
 * API keys: `llm_<prefix>_<secret>`. The prefix is a non-secret lookup handle; the database
 * keeps only a per-key random salt and HMAC-SHA256(key = salt, data = the full key string).
 * Successful authentications are cached briefly, keyed by an HMAC of the presented string
 * under a process-random key, so the hot path rarely reaches the database.
 */
import { createHmac, randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import type { Kysely } from "kysely";
import type { KeyAuthenticator, Principal } from "../core/types.js";
import type { ApiKeyRole, ApiKeyRow, DatabaseSchema } from "./schema.js";

export interface ApiKeyStoreOptions {
  db: Kysely<DatabaseSchema>;
  /**
   * How long a successful authentication is remembered. Revocation through this store clears
   * it at once; revocation by another process takes effect within this time. Default 30 s.
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
}

export interface CreatedApiKey extends ApiKeyInfo {
  /** The full key to present (`llm_<prefix>_<secret>`). Not stored: show it once. */
  secret: string;
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

function toInfo(row: Omit<ApiKeyRow, "salt" | "hash">): ApiKeyInfo {
  return {
    id: row.id,
    prefix: row.prefix,
    name: row.name,
    tenant: row.tenant,
    role: row.role,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
  };
}

const INFO_COLUMNS = ["id", "prefix", "name", "tenant", "role", "created_at", "expires_at", "revoked_at"] as const;

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
  /** Keys the cache, so the presented secrets themselves are never held in memory as map keys. */
  readonly #cacheKey = randomBytes(32);
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
    const name = input.name.trim();
    const tenant = input.tenant.trim();
    const role = input.role ?? "user";
    const expiresAt = input.expiresAt ?? null;
    if (name === "") throw new Error("an API key needs a name");
    if (tenant === "") throw new Error("an API key needs a tenant");
    if (role !== "admin" && role !== "user") throw new Error(`unknown role ${JSON.stringify(role)}`);
    if (expiresAt !== null && Number.isNaN(expiresAt.getTime())) throw new Error("expiresAt is not a valid date");

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
      if (cached.until > now) return { ...cached.principal };
      this.#cache.delete(cacheKey);
    }

    const row = await this.#db
      .selectFrom("api_keys")
      .select(["id", "salt", "hash", "name", "tenant", "role", "expires_at", "revoked_at"])
      .where("prefix", "=", prefix)
      .executeTakeFirst();
    const salt = row === undefined ? this.#dummySalt : Buffer.from(row.salt, "base64url");
    const presented = keyedHash(salt, secret);
    if (row === undefined) return null;
    const stored = Buffer.from(row.hash, "base64url");
    if (stored.length !== presented.length || !timingSafeEqual(stored, presented)) return null;
    if (row.revoked_at !== null) return null;
    const expiresAt = row.expires_at?.getTime() ?? Number.POSITIVE_INFINITY;
    if (expiresAt <= now) return null;

    const principal: Principal = { keyId: row.id, name: row.name, tenant: row.tenant, role: row.role };
    this.#remember(cacheKey, { principal, until: Math.min(now + this.#cacheTtlMs, expiresAt) });
    return { ...principal };
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
