/**
 * The development key of a first start: replicas starting together on one empty database make
 * exactly one (ApiKeyStore.createFirst), not one each.
 */
import { expect, it } from "vitest";
import { openDatabase, type Database } from "../../src/ledger/database.js";
import { ApiKeyStore } from "../../src/keys/api-keys.js";
import { describeEachDatabase } from "../helpers/postgres.js";

describeEachDatabase("the first API key", (database) => {
  it("is made once, however many stores ask at the same time; later asks get null", async () => {
    // Each Postgres store gets a pool of its own, as separate replicas would; PGlite has one connection.
    const extra: Database[] = database.kind === "postgres" ? await Promise.all([1, 2, 3, 4, 5].map(() => openDatabase(database.options))) : [];
    try {
      const stores = [database.db, ...extra.map((d) => d.db)].map((db) => new ApiKeyStore({ db }));
      expect(await stores[0]!.count()).toBe(0);
      const made = await Promise.all(stores.map((s) => s.createFirst({ name: "development", tenant: "default", role: "admin" })));
      const created = made.filter((m) => m !== null);
      expect(created).toHaveLength(1);
      expect(created[0]).toMatchObject({ name: "development", tenant: "default", role: "admin" });
      expect(await stores[0]!.count()).toBe(1);
      expect(await stores[0]!.authenticate(created[0]!.secret)).toMatchObject({ tenant: "default", role: "admin" });
      expect(await stores[stores.length - 1]!.createFirst({ name: "again", tenant: "default" })).toBeNull();
      expect(await stores[0]!.count()).toBe(1);
    } finally {
      await Promise.all(extra.map((d) => d.close()));
    }
  });
});
