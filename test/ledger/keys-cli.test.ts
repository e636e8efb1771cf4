import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { cliDatabaseOptions, parseKeysArgs, runKeysCli, UsageError } from "../../src/cli/keys.js";
import { ApiKeyStore } from "../../src/ledger/api-keys.js";
import type { Database } from "../../src/ledger/database.js";
import { describeEachDatabase } from "../helpers/postgres.js";

function captureIo() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (line: string) => void out.push(line), err: (line: string) => void err.push(line) } };
}

const neverOpen = (): Promise<Database> => Promise.reject(new Error("the database must not be opened"));

describe("keys CLI arguments", () => {
  it("reads DATABASE_URL and DATA_DIR, defaulting to ./.data", () => {
    expect(cliDatabaseOptions({})).toEqual({ dataDir: "./.data" });
    expect(cliDatabaseOptions({ DATA_DIR: "/var/lib/llm", DATABASE_URL: "" })).toEqual({ dataDir: "/var/lib/llm" });
    expect(cliDatabaseOptions({ DATABASE_URL: "postgres://db/llm" })).toEqual({
      databaseUrl: "postgres://db/llm",
      dataDir: "./.data",
    });
    expect(() => cliDatabaseOptions({ DATABASE_URL: "mysql://db/llm" })).toThrow(/DATABASE_URL/);
  });

  it("parses create with its defaults and options", () => {
    expect(parseKeysArgs(["create", "--name", "bot"])).toEqual({
      kind: "create",
      name: "bot",
      tenant: "default",
      role: "user",
      expiresInDays: null,
    });
    expect(parseKeysArgs(["create", "--name=bot", "--tenant", "acme", "--role", "admin", "--expires-in-days", "30"])).toEqual({
      kind: "create",
      name: "bot",
      tenant: "acme",
      role: "admin",
      expiresInDays: 30,
    });
    expect(parseKeysArgs(["list"])).toEqual({ kind: "list" });
    expect(parseKeysArgs(["revoke", "abc123"])).toEqual({ kind: "revoke", idOrPrefix: "abc123" });
  });

  it.each([
    [[]],
    [["frobnicate"]],
    [["create"]],
    [["create", "--name", "bot", "--role", "root"]],
    [["create", "--name", "bot", "--expires-in-days", "0"]],
    [["create", "--name", "bot", "--expires-in-days", "soon"]],
    [["create", "--name", "bot", "--colour", "blue"]],
    [["list", "extra"]],
    [["revoke"]],
    [["revoke", "a", "b"]],
  ])("rejects %j as a usage error", (argv) => {
    expect(() => parseKeysArgs(argv)).toThrow(UsageError);
  });

  it("prints the usage to stderr and exits 2 on bad arguments, without opening the database", async () => {
    const { io, out, err } = captureIo();
    expect(await runKeysCli(["create", "--role", "admin"], io, neverOpen)).toBe(2);
    expect(out).toEqual([]);
    expect(err.join("\n")).toMatch(/--name/);
    expect(err.join("\n")).toMatch(/usage: npm run keys/);
  });

  it("exits 2 with the usage when run as a program with bad arguments", async () => {
    const tsx = fileURLToPath(new URL("../../node_modules/.bin/tsx", import.meta.url));
    const script = fileURLToPath(new URL("../../src/cli/keys.ts", import.meta.url));
    const result = await promisify(execFile)(tsx, [script, "bogus"]).then(
      () => ({ code: 0, stderr: "" }),
      (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/unknown command bogus/);
  }, 30_000);
});

describeEachDatabase("keys CLI", (database) => {
  // The suite's database stays open: each command gets a handle whose close() is a no-op.
  const open = async (): Promise<Database> => ({ db: database.db, kind: database.kind, close: async () => undefined });

  it("creates a key, prints its secret once, lists it without the secret and revokes it", async () => {
    const created = captureIo();
    expect(await runKeysCli(["create", "--name", "cli bot", "--tenant", "acme", "--role", "admin", "--expires-in-days", "7"], created.io, open)).toBe(0);
    const secret = created.out.find((line) => line.startsWith("llm_"));
    expect(secret).toBeDefined();
    expect(created.out.join("\n")).toMatch(/will not be shown again/);

    const keys = new ApiKeyStore({ db: database.db });
    const principal = await keys.authenticate(secret!);
    expect(principal).toMatchObject({ name: "cli bot", tenant: "acme", role: "admin" });
    const prefix = secret!.split("_")[1]!;

    const listed = captureIo();
    expect(await runKeysCli(["list"], listed.io, open)).toBe(0);
    const table = listed.out.join("\n");
    expect(table).toMatch(/^ID\s+PREFIX\s+NAME\s+TENANT\s+ROLE\s+CREATED\s+EXPIRES\s+STATUS/);
    expect(table).toContain(prefix);
    expect(table).toMatch(new RegExp(`${prefix}\\s+cli bot\\s+acme\\s+admin\\s+\\S+\\s+\\S+\\s+active`));
    expect(table).not.toContain(secret!.slice(16));

    const revoked = captureIo();
    expect(await runKeysCli(["revoke", prefix], revoked.io, open)).toBe(0);
    expect(await new ApiKeyStore({ db: database.db }).authenticate(secret!)).toBeNull();

    const relisted = captureIo();
    await runKeysCli(["list"], relisted.io, open);
    expect(relisted.out.join("\n")).toMatch(new RegExp(`${prefix}.*revoked`));
  });

  it("exits 1 when revoking a key that does not exist", async () => {
    const { io, err } = captureIo();
    expect(await runKeysCli(["revoke", "nope"], io, open)).toBe(1);
    expect(err.join("\n")).toMatch(/no API key/);
  });
});
