import { createHash } from "node:crypto";
import type { KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs, QueryResult, RootOperationNode, UnknownRow } from "kysely";
import { expect, it } from "vitest";
import { sql } from "kysely";
import { parseKeyPrefix } from "../../src/keys/api-key-secret.js";
import { ApiKeyStore } from "../../src/keys/api-keys.js";
import { ApiKeyInputError } from "../../src/keys/key-input.js";
import type { LimitsPatch } from "../../src/keys/stored-limits.js";
import type { Limits } from "../../src/core/types.js";
import { describeEachDatabase } from "../helpers/postgres.js";

/** Makes every query fail, like a database that went away. */
class OutagePlugin implements KyselyPlugin {
  down = false;
  queries = 0;

  transformQuery({ node }: PluginTransformQueryArgs): RootOperationNode {
    this.queries++;
    if (this.down) throw new Error("connect ECONNREFUSED (simulated)");
    return node;
  }

  async transformResult({ result }: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return result;
  }
}

/** A clock the test moves by hand. */
function manualClock(start = Date.now()) {
  let now = start;
  return { now: () => new Date(now), advance: (ms: number) => void (now += ms) };
}

describeEachDatabase("ApiKeyStore", (database) => {
  const store = () => new ApiKeyStore({ db: database.db });

  it("creates keys of the form llm_<prefix>_<secret> that authenticate as their principal", async () => {
    const keys = store();
    const key = await keys.create({ name: "ci bot", tenant: "acme", role: "admin" });

    expect(key.secret).toMatch(/^llm_[a-z0-9]{10}_[A-Za-z0-9_-]{43}$/);
    expect(parseKeyPrefix(key.secret)).toBe(key.prefix);
    expect(await keys.authenticate(key.secret)).toEqual({ keyId: key.id, name: "ci bot", tenant: "acme", role: "admin" });
    // Another store (another replica) sees it too: nothing depends on the creating process.
    expect(await store().authenticate(key.secret)).toEqual({ keyId: key.id, name: "ci bot", tenant: "acme", role: "admin" });
  });

  it("gives new keys the user role by default", async () => {
    const keys = store();
    const key = await keys.create({ name: "svc", tenant: "acme" });
    expect(key.role).toBe("user");
    expect((await keys.authenticate(key.secret))?.role).toBe("user");
  });

  it("rejects a wrong secret for a known prefix", async () => {
    const keys = store();
    const key = await keys.create({ name: "svc", tenant: "acme" });
    const last = key.secret.at(-1) === "A" ? "B" : "A";
    expect(await keys.authenticate(key.secret.slice(0, -1) + last)).toBeNull();
  });

  it("rejects an unknown prefix and malformed keys", async () => {
    const keys = store();
    const key = await keys.create({ name: "svc", tenant: "acme" });
    const unknownPrefix = `llm_zzzzzzzzzz_${key.secret.slice(4 + 10 + 1)}`;
    expect(await keys.authenticate(unknownPrefix)).toBeNull();
    for (const malformed of ["", "llm_", key.secret + "x", key.secret.toUpperCase(), `Bearer ${key.secret}`, key.prefix]) {
      expect(await keys.authenticate(malformed)).toBeNull();
    }
  });

  it("rejects a revoked key at once, even one authenticated a moment before", async () => {
    const keys = store();
    const byPrefix = await keys.create({ name: "a", tenant: "acme" });
    const byId = await keys.create({ name: "b", tenant: "acme" });
    expect(await keys.authenticate(byPrefix.secret)).not.toBeNull();
    expect(await keys.authenticate(byId.secret)).not.toBeNull();

    const revoked = await keys.revoke(byPrefix.prefix);
    expect(revoked?.id).toBe(byPrefix.id);
    expect(revoked?.revokedAt).toBeInstanceOf(Date);
    expect((await keys.revoke(byId.id))?.prefix).toBe(byId.prefix);

    expect(await keys.authenticate(byPrefix.secret)).toBeNull();
    expect(await keys.authenticate(byId.secret)).toBeNull();
    expect(await store().authenticate(byPrefix.secret)).toBeNull();
  });

  it("keeps the first revocation time when a key is revoked twice, and returns null for an unknown key", async () => {
    const keys = store();
    const key = await keys.create({ name: "a", tenant: "acme" });
    const first = await keys.revoke(key.id);
    const second = await keys.revoke(key.prefix);
    expect(second?.revokedAt).toEqual(first?.revokedAt);
    expect(await keys.revoke("no-such-key")).toBeNull();
  });

  it("rejects an expired key, also when its authentication is cached", async () => {
    const clock = manualClock();
    const keys = new ApiKeyStore({ db: database.db, now: clock.now, cacheTtlMs: 60_000 });
    const key = await keys.create({ name: "temp", tenant: "acme", expiresAt: new Date(clock.now().getTime() + 10_000) });

    expect(await keys.authenticate(key.secret)).not.toBeNull();
    clock.advance(10_000);
    expect(await keys.authenticate(key.secret)).toBeNull();
    expect(await new ApiKeyStore({ db: database.db, now: clock.now }).authenticate(key.secret)).toBeNull();
  });

  it("answers repeated authentications from memory until the cache TTL passes", async () => {
    const clock = manualClock();
    const outage = new OutagePlugin();
    const keys = new ApiKeyStore({ db: database.db.withPlugin(outage), now: clock.now, cacheTtlMs: 30_000 });
    const key = await keys.create({ name: "hot", tenant: "acme" });

    expect(await keys.authenticate(key.secret)).not.toBeNull();
    const queries = outage.queries;
    outage.down = true;
    expect(await keys.authenticate(key.secret)).toEqual({ keyId: key.id, name: "hot", tenant: "acme", role: "user" });
    expect(outage.queries).toBe(queries);

    // A wrong secret is never answered from the cache of a right one.
    await expect(keys.authenticate(key.secret.slice(0, -1) + (key.secret.endsWith("A") ? "B" : "A"))).rejects.toThrow();

    clock.advance(30_000);
    // Past the TTL the key needs the database: a retryable DATABASE_UNAVAILABLE, the driver's error as its cause.
    const err: unknown = await keys.authenticate(key.secret).then(() => undefined, (e: unknown) => e);
    expect(err).toMatchObject({ reason: "DATABASE_UNAVAILABLE", retryAfterMs: expect.any(Number) });
    expect(String((err as Error).cause)).toMatch(/ECONNREFUSED/);
  });

  it("stores neither the secret nor its bare SHA-256", async () => {
    const keys = store();
    const key = await keys.create({ name: "audit", tenant: "acme" });
    const row = await database.db.selectFrom("api_keys").selectAll().where("id", "=", key.id).executeTakeFirstOrThrow();
    const stored = JSON.stringify(row);
    const secretPart = key.secret.slice(4 + 10 + 1);

    const forbidden = [key.secret, secretPart];
    for (const value of [key.secret, secretPart]) {
      const digest = createHash("sha256").update(value).digest();
      forbidden.push(digest.toString("hex"), digest.toString("base64"), digest.toString("base64url"));
    }
    for (const value of forbidden) expect(stored).not.toContain(value);
    expect(row.prefix).toBe(key.prefix);
    expect(row.salt).not.toBe("");
    expect(row.hash).not.toBe("");
  });

  it("salts every key differently", async () => {
    const keys = store();
    const a = await keys.create({ name: "a", tenant: "acme" });
    const b = await keys.create({ name: "b", tenant: "acme" });
    const rows = await database.db.selectFrom("api_keys").select(["salt"]).where("id", "in", [a.id, b.id]).execute();
    expect(new Set(rows.map((r) => r.salt)).size).toBe(2);
  });

  it("lists keys without secrets or hashes", async () => {
    const keys = store();
    const key = await keys.create({ name: "listed", tenant: "acme", expiresAt: new Date("2099-01-01T00:00:00Z") });
    const listed = await keys.list();
    const entry = listed.find((k) => k.id === key.id);

    expect(entry).toEqual({
      id: key.id,
      prefix: key.prefix,
      name: "listed",
      tenant: "acme",
      role: "user",
      createdAt: key.createdAt,
      expiresAt: new Date("2099-01-01T00:00:00Z"),
      revokedAt: null,
      allowedModels: [],
      limits: {},
      disabledAt: null,
    });
    const text = JSON.stringify(listed);
    expect(text).not.toContain(key.secret.slice(4 + 10 + 1));
    expect(text).not.toMatch(/"(salt|hash|secret)"/);
  });

  it("counts keys, revoked ones included", async () => {
    const keys = store();
    const before = await keys.count();
    const key = await keys.create({ name: "c1", tenant: "acme" });
    await keys.create({ name: "c2", tenant: "acme" });
    await keys.revoke(key.id);
    expect(await keys.count()).toBe(before + 2);
  });

  it("refuses to create a key without a name or tenant", async () => {
    const keys = store();
    await expect(keys.create({ name: " ", tenant: "acme" })).rejects.toThrow(/name/);
    await expect(keys.create({ name: "x", tenant: "" })).rejects.toThrow(/tenant/);
  });
});

/** A tenant name no other test uses, so the tests' tenant rows never meet. */
const uniqueTenant = (label: string) => `${label}-${Math.random().toString(36).slice(2, 10)}`;

const HUGE_BUDGET = 12_345_678_901_234_567_890n; // past 2^63: a JSON number or an int8 would not hold it

describeEachDatabase("ApiKeyStore models and limits", (database) => {
  const store = () => new ApiKeyStore({ db: database.db });

  it("creates a key with models and limits and authenticates it with them, bigint budgets exact", async () => {
    const keys = store();
    const limits: Limits = {
      requestsPerMinute: 60,
      tokensPerMinute: 100_000,
      concurrentRequests: 4,
      budgetUsdNanosPerDay: 12_500_000_000n,
      budgetUsdNanosPerMonth: HUGE_BUDGET,
    };
    const key = await keys.create({ name: "limited", tenant: uniqueTenant("acme"), allowedModels: ["sim/*", "gpt-4o*"], limits });

    expect(key.allowedModels).toEqual(["sim/*", "gpt-4o*"]);
    expect(key.limits).toEqual(limits);
    expect(key.disabledAt).toBeNull();
    // A fresh store reads it all back from the database, not from anything this one remembers.
    const principal = await store().authenticate(key.secret);
    expect(principal).toEqual({
      keyId: key.id,
      name: "limited",
      tenant: key.tenant,
      role: "user",
      allowedModels: ["sim/*", "gpt-4o*"],
      limits,
    });
    expect(principal?.limits?.budgetUsdNanosPerMonth).toBe(HUGE_BUDGET);
    expect((await keys.list()).find((k) => k.id === key.id)?.limits.budgetUsdNanosPerMonth).toBe(HUGE_BUDGET);
  });

  it("stores budgets as decimal strings inside the limits JSON", async () => {
    const key = await store().create({ name: "json", tenant: "acme", limits: { requestsPerMinute: 5, budgetUsdNanosPerMonth: HUGE_BUDGET } });
    const row = await database.db.selectFrom("api_keys").select(["limits", "allowed_models"]).where("id", "=", key.id).executeTakeFirstOrThrow();
    expect(row.limits).toEqual({ requests_per_minute: 5, budget_usd_nanos_per_month: "12345678901234567890" });
    expect(row.allowed_models).toEqual([]);
  });

  it("leaves models and limits off the principal of a key that has none", async () => {
    const keys = store();
    const key = await keys.create({ name: "plain", tenant: uniqueTenant("plain") });
    const principal = await keys.authenticate(key.secret);
    expect(principal).not.toHaveProperty("allowedModels");
    expect(principal).not.toHaveProperty("limits");
    expect(principal).not.toHaveProperty("tenantLimits");
  });

  it("trims model patterns and drops duplicates", async () => {
    const key = await store().create({ name: "m", tenant: "acme", allowedModels: [" sim/* ", "sim/*", "gpt-4o"] });
    expect(key.allowedModels).toEqual(["sim/*", "gpt-4o"]);
  });

  it("merges limits on update: a given field is set, null clears it, a missing one stays", async () => {
    const keys = store();
    const key = await keys.create({
      name: "merge",
      tenant: "acme",
      limits: { requestsPerMinute: 10, tokensPerMinute: 1_000, budgetUsdNanosPerDay: 5n },
    });

    const updated = await keys.update(key.prefix, {
      limits: { requestsPerMinute: 20, tokensPerMinute: null, budgetUsdNanosPerMonth: HUGE_BUDGET },
    });
    const expected: Limits = { requestsPerMinute: 20, budgetUsdNanosPerDay: 5n, budgetUsdNanosPerMonth: HUGE_BUDGET };
    expect(updated?.limits).toEqual(expected);
    expect((await store().authenticate(key.secret))?.limits).toEqual(expected);

    // Clearing every limit leaves none at all.
    const cleared = await keys.update(key.id, {
      limits: { requestsPerMinute: null, budgetUsdNanosPerDay: null, budgetUsdNanosPerMonth: null },
    });
    expect(cleared?.limits).toEqual({});
    expect(await store().authenticate(key.secret)).not.toHaveProperty("limits");
  });

  it("merges concurrent updates of different limits without losing either", async () => {
    const keys = store();
    const key = await keys.create({ name: "race", tenant: "acme" });
    await Promise.all([
      keys.update(key.id, { limits: { requestsPerMinute: 7 } }),
      store().update(key.id, { limits: { tokensPerMinute: 700 } }),
      store().update(key.id, { limits: { concurrentRequests: 3 } }),
    ]);
    expect((await keys.list()).find((k) => k.id === key.id)?.limits).toEqual({
      requestsPerMinute: 7,
      tokensPerMinute: 700,
      concurrentRequests: 3,
    });
  });

  it("updates the name, models and expiry, leaving the rest as it was", async () => {
    const keys = store();
    const key = await keys.create({ name: "old", tenant: "acme", allowedModels: ["sim/*"], limits: { requestsPerMinute: 3 } });

    const renamed = await keys.update(key.id, { name: "  new  ", allowedModels: ["gpt-4o*"], expiresAt: new Date("2099-06-01T00:00:00Z") });
    expect(renamed).toMatchObject({
      id: key.id,
      name: "new",
      tenant: "acme",
      allowedModels: ["gpt-4o*"],
      limits: { requestsPerMinute: 3 },
      expiresAt: new Date("2099-06-01T00:00:00Z"),
      revokedAt: null,
      disabledAt: null,
    });

    const unrestricted = await keys.update(key.id, { allowedModels: [], expiresAt: null });
    expect(unrestricted?.allowedModels).toEqual([]);
    expect(unrestricted?.expiresAt).toBeNull();
    expect(await store().authenticate(key.secret)).toEqual({
      keyId: key.id,
      name: "new",
      tenant: "acme",
      role: "user",
      limits: { requestsPerMinute: 3 },
    });
  });

  it("returns null when updating a key that does not exist, and the key unchanged for an empty update", async () => {
    const keys = store();
    expect(await keys.update("no-such-key", { name: "x" })).toBeNull();
    expect(await keys.update("no-such-key", {})).toBeNull();
    const key = await keys.create({ name: "same", tenant: "acme", limits: { tokensPerMinute: 9 } });
    const { secret: _secret, ...info } = key;
    expect(await keys.update(key.prefix, {})).toEqual(info);
    expect(await keys.update(key.prefix, { limits: {} })).toEqual(info);
  });

  it("rejects a disabled key at once, also when cached, and accepts it again once re-enabled", async () => {
    const keys = new ApiKeyStore({ db: database.db, cacheTtlMs: 60_000 });
    const key = await keys.create({ name: "switch", tenant: "acme" });
    expect(await keys.authenticate(key.secret)).not.toBeNull();

    const disabled = await keys.update(key.prefix, { enabled: false });
    expect(disabled?.disabledAt).toBeInstanceOf(Date);
    expect(await keys.authenticate(key.secret)).toBeNull();
    expect(await store().authenticate(key.secret)).toBeNull();

    // Disabling twice keeps the first time, as revoking does.
    expect((await keys.update(key.id, { enabled: false }))?.disabledAt).toEqual(disabled?.disabledAt);

    const enabled = await keys.update(key.id, { enabled: true });
    expect(enabled?.disabledAt).toBeNull();
    expect(await keys.authenticate(key.secret)).toMatchObject({ keyId: key.id });
    expect(await store().authenticate(key.secret)).toMatchObject({ keyId: key.id });
  });

  it("does not bring a revoked key back when it is enabled", async () => {
    const keys = store();
    const key = await keys.create({ name: "gone", tenant: "acme" });
    await keys.revoke(key.id);
    expect((await keys.update(key.id, { enabled: true }))?.revokedAt).toBeInstanceOf(Date);
    expect(await keys.authenticate(key.secret)).toBeNull();
  });

  it("puts the tenant's limits on the principal of each of its keys, and only of its keys", async () => {
    const keys = store();
    const tenant = uniqueTenant("team");
    const own = await keys.create({ name: "own", tenant, limits: { requestsPerMinute: 100 } });
    const sibling = await keys.create({ name: "sibling", tenant });
    const stranger = await keys.create({ name: "stranger", tenant: uniqueTenant("other") });

    const info = await keys.setTenantLimits(tenant, { requestsPerMinute: 1_000, budgetUsdNanosPerMonth: HUGE_BUDGET });
    expect(info).toMatchObject({ name: tenant, limits: { requestsPerMinute: 1_000, budgetUsdNanosPerMonth: HUGE_BUDGET } });

    const fresh = store();
    expect(await fresh.authenticate(own.secret)).toMatchObject({
      limits: { requestsPerMinute: 100 },
      tenantLimits: { requestsPerMinute: 1_000, budgetUsdNanosPerMonth: HUGE_BUDGET },
    });
    expect((await fresh.authenticate(sibling.secret))?.tenantLimits).toEqual({
      requestsPerMinute: 1_000,
      budgetUsdNanosPerMonth: HUGE_BUDGET,
    });
    expect(await fresh.authenticate(stranger.secret)).not.toHaveProperty("tenantLimits");
  });

  it("merges tenant limits, clears them with null, and lists and reads tenants", async () => {
    const keys = store();
    const tenant = uniqueTenant("merge");
    expect(await keys.getTenant(tenant)).toBeNull();

    const first = await keys.setTenantLimits(tenant, { requestsPerMinute: 5, tokensPerMinute: 50 });
    const second = await keys.setTenantLimits(` ${tenant} `, { tokensPerMinute: null, concurrentRequests: 2 });
    expect(second.limits).toEqual({ requestsPerMinute: 5, concurrentRequests: 2 });
    expect(second.createdAt).toEqual(first.createdAt);
    expect(second.updatedAt.getTime()).toBeGreaterThanOrEqual(first.updatedAt.getTime());
    expect(await keys.getTenant(tenant)).toEqual(second);

    const other = uniqueTenant("list");
    await keys.setTenantLimits(other, { budgetUsdNanosPerDay: 0n });
    const listed = (await keys.listTenants()).filter((t) => t.name === tenant || t.name === other);
    expect(listed.map((t) => t.name)).toEqual([tenant, other].sort());
    expect(listed.find((t) => t.name === other)?.limits).toEqual({ budgetUsdNanosPerDay: 0n });

    await keys.setTenantLimits(tenant, { requestsPerMinute: null, concurrentRequests: null });
    expect((await keys.getTenant(tenant))?.limits).toEqual({});
  });

  it("drops its cached authentication of a key when the key is updated, while another store's lingers until its TTL", async () => {
    const clock = manualClock();
    const here = new ApiKeyStore({ db: database.db, now: clock.now, cacheTtlMs: 30_000 });
    const elsewhere = new ApiKeyStore({ db: database.db, now: clock.now, cacheTtlMs: 30_000 });
    const key = await here.create({ name: "cached", tenant: "acme", limits: { requestsPerMinute: 10 } });
    expect((await here.authenticate(key.secret))?.limits).toEqual({ requestsPerMinute: 10 });
    expect((await elsewhere.authenticate(key.secret))?.limits).toEqual({ requestsPerMinute: 10 });

    await here.update(key.id, { limits: { requestsPerMinute: 20 }, allowedModels: ["sim/*"] });
    expect(await here.authenticate(key.secret)).toMatchObject({ limits: { requestsPerMinute: 20 }, allowedModels: ["sim/*"] });
    // The other process learns of the change when its cached entry runs out, not before.
    expect((await elsewhere.authenticate(key.secret))?.limits).toEqual({ requestsPerMinute: 10 });
    clock.advance(30_000);
    expect((await elsewhere.authenticate(key.secret))?.limits).toEqual({ requestsPerMinute: 20 });
  });

  it("drops its cached authentications of a tenant's keys when the tenant's limits change", async () => {
    const keys = new ApiKeyStore({ db: database.db, cacheTtlMs: 60_000 });
    const tenant = uniqueTenant("cache");
    const key = await keys.create({ name: "t", tenant });
    expect(await keys.authenticate(key.secret)).not.toHaveProperty("tenantLimits");
    await keys.setTenantLimits(tenant, { concurrentRequests: 1 });
    expect((await keys.authenticate(key.secret))?.tenantLimits).toEqual({ concurrentRequests: 1 });
  });

  it("answers from the cache with the limits, and a caller changing its copy changes nothing", async () => {
    const outage = new OutagePlugin();
    const keys = new ApiKeyStore({ db: database.db.withPlugin(outage), cacheTtlMs: 60_000 });
    const tenant = uniqueTenant("copy");
    await keys.setTenantLimits(tenant, { tokensPerMinute: 500 });
    const key = await keys.create({ name: "c", tenant, allowedModels: ["sim/*"], limits: { budgetUsdNanosPerDay: 7n } });
    const first = await keys.authenticate(key.secret);

    outage.down = true;
    first!.allowedModels!.push("gpt-4o");
    first!.limits!.budgetUsdNanosPerDay = 1_000n;
    first!.tenantLimits!.tokensPerMinute = 1;
    expect(await keys.authenticate(key.secret)).toEqual({
      keyId: key.id,
      name: "c",
      tenant,
      role: "user",
      allowedModels: ["sim/*"],
      limits: { budgetUsdNanosPerDay: 7n },
      tenantLimits: { tokensPerMinute: 500 },
    });
  });

  const badLimits: [string, LimitsPatch, RegExp][] = [
    ["zero requests per minute", { requestsPerMinute: 0 }, /requestsPerMinute must be a positive integer/],
    ["negative tokens per minute", { tokensPerMinute: -1 }, /tokensPerMinute must be a positive integer/],
    ["fractional concurrency", { concurrentRequests: 1.5 }, /concurrentRequests must be a positive integer/],
    ["NaN", { requestsPerMinute: Number.NaN }, /positive integer/],
    ["an unsafe integer", { tokensPerMinute: 2 ** 53 }, /positive integer/],
    ["a negative budget", { budgetUsdNanosPerDay: -1n }, /non-negative bigint/],
    // Budgets must be bigint nanos, not dollars as a Number.
    ["a budget as a number", { budgetUsdNanosPerMonth: 12.5 as unknown as bigint }, /non-negative bigint/],
    ["an unknown limit", { requestsPerHour: 5 } as LimitsPatch, /unknown limit "requestsPerHour"/],
  ];

  it.each(badLimits)("refuses %s in create, update and tenant limits, writing nothing", async (_label, limits, message) => {
    const keys = store();
    const before = await keys.count();
    await expect(keys.create({ name: "bad", tenant: "acme", limits: limits as Limits })).rejects.toThrow(message);
    await expect(keys.create({ name: "bad", tenant: "acme", limits: limits as Limits })).rejects.toBeInstanceOf(ApiKeyInputError);
    expect(await keys.count()).toBe(before);

    const key = await keys.create({ name: "good", tenant: "acme", limits: { requestsPerMinute: 1 } });
    await expect(keys.update(key.id, { limits })).rejects.toThrow(message);
    expect((await keys.update(key.id, {}))?.limits).toEqual({ requestsPerMinute: 1 });

    const tenant = uniqueTenant("bad");
    await expect(keys.setTenantLimits(tenant, limits)).rejects.toThrow(message);
    expect(await keys.getTenant(tenant)).toBeNull();
  });

  it.each([
    ["an empty pattern", [""], /empty/],
    ["a blank pattern", ["  "], /empty/],
    ["a pattern over 128 characters", ["x".repeat(129)], /at most 128 characters/],
    ["65 patterns", Array.from({ length: 65 }, (_, i) => `model-${i}`), /at most 64 model patterns/],
    ["a pattern with a space", ["gpt 4o"], /whitespace/],
  ])("refuses %s as allowed models on create and update", async (_label, models, message) => {
    const keys = store();
    await expect(keys.create({ name: "bad", tenant: "acme", allowedModels: models })).rejects.toThrow(message);
    const key = await keys.create({ name: "good", tenant: "acme", allowedModels: ["sim/*"] });
    await expect(keys.update(key.id, { allowedModels: models })).rejects.toThrow(message);
    expect((await keys.update(key.id, {}))?.allowedModels).toEqual(["sim/*"]);
  });

  it("accepts 64 patterns of 128 characters and a zero budget", async () => {
    const models = Array.from({ length: 64 }, (_, i) => `${i}-`.padEnd(128, "m"));
    const key = await store().create({ name: "max", tenant: "acme", allowedModels: models, limits: { budgetUsdNanosPerDay: 0n } });
    expect(key.allowedModels).toEqual(models);
    expect(key.limits).toEqual({ budgetUsdNanosPerDay: 0n });
  });

  it("refuses an empty name or tenant and an invalid expiry on update and for tenants", async () => {
    const keys = store();
    const key = await keys.create({ name: "k", tenant: "acme" });
    await expect(keys.update(key.id, { name: "  " })).rejects.toThrow(/name must not be empty/);
    await expect(keys.update(key.id, { expiresAt: new Date("nonsense") })).rejects.toThrow(/not a valid date/);
    await expect(keys.setTenantLimits(" ", { requestsPerMinute: 1 })).rejects.toThrow(/tenant's name must not be empty/);
  });

  it("fails closed when a key's stored limits are malformed, rather than authenticating without them", async () => {
    const keys = store();
    const key = await keys.create({ name: "corrupt", tenant: "acme", limits: { budgetUsdNanosPerDay: 1n } });
    await sql`update api_keys set limits = '{"budget_usd_nanos_per_day": 1.5}'::jsonb where id = ${key.id}`.execute(database.db);
    await expect(keys.authenticate(key.secret)).rejects.toThrow(/budget_usd_nanos_per_day/);
  });
});
