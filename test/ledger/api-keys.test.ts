import { createHash } from "node:crypto";
import type { KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs, QueryResult, RootOperationNode, UnknownRow } from "kysely";
import { expect, it } from "vitest";
import { ApiKeyStore, parseKeyPrefix } from "../../src/ledger/api-keys.js";
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
    await expect(keys.authenticate(key.secret)).rejects.toThrow(/ECONNREFUSED/);
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
