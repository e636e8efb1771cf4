import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { cliDatabaseOptions, runKeysCli } from "../../src/cli/keys.js";
import { parseKeysArgs } from "../../src/cli/keys/arguments.js";
import { formatLimits } from "../../src/cli/keys/output.js";
import { KEYS_USAGE, UsageError } from "../../src/cli/keys/usage.js";
import { formatUsd, parseUsd } from "../../src/cli/keys/usd.js";
import { ApiKeyStore } from "../../src/keys/api-keys.js";
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

  it("parses create with models and every limit, dollars to exact nanos", () => {
    expect(
      parseKeysArgs([
        "create",
        "--name",
        "bot",
        "--models",
        "sim/*, gpt-4o*,sim/*",
        "--rpm",
        "60",
        "--tpm=100000",
        "--concurrency",
        "4",
        "--budget-day",
        "12.50",
        "--budget-month",
        "12345678901.23456789",
      ]),
    ).toEqual({
      kind: "create",
      name: "bot",
      tenant: "default",
      role: "user",
      expiresInDays: null,
      allowedModels: ["sim/*", "gpt-4o*"],
      limits: {
        requestsPerMinute: 60,
        tokensPerMinute: 100_000,
        concurrentRequests: 4,
        budgetUsdNanosPerDay: 12_500_000_000n,
        budgetUsdNanosPerMonth: 12_345_678_901_234_567_890n,
      },
    });
  });

  it("parses update with each of its flags", () => {
    const update = (...args: string[]) => parseKeysArgs(["update", "k1", ...args]);
    expect(update("--name", " renamed ")).toEqual({ kind: "update", idOrPrefix: "k1", changes: { name: "renamed" } });
    expect(update("--models", "a,b")).toEqual({ kind: "update", idOrPrefix: "k1", changes: { allowedModels: ["a", "b"] } });
    expect(update("--rpm", "1", "--tpm", "2", "--concurrency", "3", "--budget-day", "0", "--budget-month", "0.000000001")).toEqual({
      kind: "update",
      idOrPrefix: "k1",
      changes: {
        limits: {
          requestsPerMinute: 1,
          tokensPerMinute: 2,
          concurrentRequests: 3,
          budgetUsdNanosPerDay: 0n,
          budgetUsdNanosPerMonth: 1n,
        },
      },
    });
    expect(update("--clear", "rpm,tpm,concurrency,budget-day,budget-month")).toEqual({
      kind: "update",
      idOrPrefix: "k1",
      changes: {
        limits: {
          requestsPerMinute: null,
          tokensPerMinute: null,
          concurrentRequests: null,
          budgetUsdNanosPerDay: null,
          budgetUsdNanosPerMonth: null,
        },
      },
    });
    expect(update("--clear", "models")).toEqual({ kind: "update", idOrPrefix: "k1", changes: { allowedModels: [] } });
    expect(update("--clear", "tpm", "--rpm", "5")).toEqual({
      kind: "update",
      idOrPrefix: "k1",
      changes: { limits: { requestsPerMinute: 5, tokensPerMinute: null } },
    });
    expect(update("--disable")).toEqual({ kind: "update", idOrPrefix: "k1", changes: { enabled: false } });
    expect(update("--enable")).toEqual({ kind: "update", idOrPrefix: "k1", changes: { enabled: true } });
    expect(update("--expires-in-days", "1.5")).toEqual({ kind: "update", idOrPrefix: "k1", changes: { expiresInDays: 1.5 } });
    expect(update("--no-expiry")).toEqual({ kind: "update", idOrPrefix: "k1", changes: { expiresInDays: null } });
  });

  it("parses tenant with limits, with --clear, and alone (show), and tenants", () => {
    expect(parseKeysArgs(["tenant", "acme", "--rpm", "100", "--budget-month", "250"])).toEqual({
      kind: "tenant",
      tenant: "acme",
      limits: { requestsPerMinute: 100, budgetUsdNanosPerMonth: 250_000_000_000n },
    });
    expect(parseKeysArgs(["tenant", "acme", "--clear", "budget-month"])).toEqual({
      kind: "tenant",
      tenant: "acme",
      limits: { budgetUsdNanosPerMonth: null },
    });
    expect(parseKeysArgs(["tenant", "acme"])).toEqual({ kind: "tenant", tenant: "acme" });
    expect(parseKeysArgs(["tenants"])).toEqual({ kind: "tenants" });
  });

  it.each([
    [["create", "--name", "bot", "--rpm", "0"], /--rpm must be a positive whole number/],
    [["create", "--name", "bot", "--tpm", "1.5"], /--tpm must be a positive whole number/],
    [["create", "--name", "bot", "--concurrency", "many"], /--concurrency must be a positive whole number/],
    [["create", "--name", "bot", "--rpm", "99999999999999999999"], /--rpm must be a positive whole number/],
    [["create", "--name", "bot", "--rpm=-5"], /--rpm must be a positive whole number/],
    [["create", "--name", "bot", "--budget-day", "-1"], /./],
    [["create", "--name", "bot", "--budget-day", "1e3"], /--budget-day must be an amount of dollars/],
    [["create", "--name", "bot", "--budget-month", "0.0000000001"], /up to 9 decimals/],
    [["create", "--name", "bot", "--budget-month", "$5"], /--budget-month must be an amount of dollars/],
    [["create", "--name", "bot", "--models", ""], /--models: a model pattern must not be empty/],
    [["create", "--name", "bot", "--models", "a,,b"], /--models: a model pattern must not be empty/],
    [["create", "--name", "bot", "--models", "x".repeat(129)], /at most 128 characters/],
    [["create", "--name", "bot", "--models", Array.from({ length: 65 }, (_, i) => `m${i}`).join(",")], /at most 64/],
    [["create", "--name", "bot", "--clear", "rpm"], /Unknown option '--clear'/],
    [["create", "--name", "bot", "--disable"], /Unknown option '--disable'/],
    [["update"], /update needs exactly one <id\|prefix>/],
    [["update", "a", "b", "--rpm", "1"], /update needs exactly one/],
    [["update", "k1"], /update needs at least one change/],
    [["update", "k1", "--name", " "], /--name must not be empty/],
    [["update", "k1", "--enable", "--disable"], /--enable and --disable exclude each other/],
    [["update", "k1", "--expires-in-days", "3", "--no-expiry"], /--expires-in-days and --no-expiry exclude each other/],
    [["update", "k1", "--expires-in-days", "0"], /--expires-in-days must be a positive number/],
    [["update", "k1", "--clear", "rpm,bogus"], /--clear takes a comma-separated list of .*"bogus"/],
    [["update", "k1", "--clear", ""], /--clear takes/],
    [["update", "k1", "--rpm", "5", "--clear", "rpm"], /--rpm cannot be both set and cleared/],
    [["update", "k1", "--models", "a", "--clear", "models"], /--models cannot be both set and cleared/],
    [["update", "k1", "--role", "admin"], /Unknown option '--role'/],
    [["update", "k1", "--rpm"], /argument missing/],
    [["tenant"], /tenant needs exactly one <name>/],
    [["tenant", "a", "b"], /tenant needs exactly one <name>/],
    [["tenant", "acme", "--clear", "models"], /--clear takes/],
    [["tenant", "acme", "--models", "sim/*"], /Unknown option '--models'/],
    [["tenant", "acme", "--budget-day", "ten"], /--budget-day must be an amount of dollars/],
    [["tenants", "acme"], /unexpected argument acme/],
  ])("rejects %j as a usage error", (argv, message) => {
    expect(() => parseKeysArgs(argv)).toThrow(UsageError);
    expect(() => parseKeysArgs(argv)).toThrow(message);
  });

  it("parses dollars exactly and prints nanos as dollars", () => {
    expect(parseUsd("0")).toBe(0n);
    expect(parseUsd("12.5")).toBe(12_500_000_000n);
    expect(parseUsd("0.1")).toBe(100_000_000n); // 0.1 is not exact as a float; here it is
    expect(parseUsd("18446744073.709551617")).toBe(18_446_744_073_709_551_617n);
    expect(parseUsd("1.")).toBeNull();
    expect(parseUsd(".5")).toBeNull();
    expect(formatUsd(12_500_000_000n)).toBe("$12.50");
    expect(formatUsd(0n)).toBe("$0.00");
    expect(formatUsd(1n)).toBe("$0.000000001");
    expect(formatUsd(12_345_678_901_234_567_890n)).toBe("$12345678901.23456789");
    expect(formatLimits({})).toBe("none");
    expect(formatLimits({ concurrentRequests: 2, requestsPerMinute: 60, budgetUsdNanosPerMonth: 100_000_000_000n })).toBe(
      "rpm=60 concurrency=2 budget-month=$100.00",
    );
  });

  it("documents every command and flag in the usage", () => {
    for (const word of ["update <id|prefix>", "tenant <name>", "tenants", "--models", "--rpm", "--tpm", "--concurrency", "--budget-day", "--budget-month", "--clear", "--enable", "--disable", "--no-expiry", "--expires-in-days", "--name"]) {
      expect(KEYS_USAGE).toContain(word);
    }
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

  it("creates a key with models and limits, updates, disables and re-enables it, and lists it compactly", async () => {
    const created = captureIo();
    const argv = ["create", "--name", "limited", "--tenant", "cli-limits", "--models", "sim/*,gpt-4o*"];
    argv.push("--rpm", "60", "--tpm", "1000", "--concurrency", "2", "--budget-day", "12.50", "--budget-month", "12345678901.23456789");
    expect(await runKeysCli(argv, created.io, open)).toBe(0);
    const text = created.out.join("\n");
    expect(text).toContain("Models: sim/*,gpt-4o*");
    expect(text).toContain("Limits: rpm=60 tpm=1000 concurrency=2 budget-day=$12.50 budget-month=$12345678901.23456789");
    const secret = created.out.find((line) => line.startsWith("llm_"))!;
    const prefix = secret.split("_")[1]!;
    expect(await new ApiKeyStore({ db: database.db }).authenticate(secret)).toMatchObject({
      allowedModels: ["sim/*", "gpt-4o*"],
      limits: {
        requestsPerMinute: 60,
        tokensPerMinute: 1_000,
        concurrentRequests: 2,
        budgetUsdNanosPerDay: 12_500_000_000n,
        budgetUsdNanosPerMonth: 12_345_678_901_234_567_890n,
      },
    });

    const updated = captureIo();
    expect(await runKeysCli(["update", prefix, "--name", "renamed", "--rpm", "120", "--clear", "tpm,budget-day,models", "--expires-in-days", "2"], updated.io, open)).toBe(0);
    expect(updated.out.join("\n")).toMatch(/Updated API key .* "renamed"/);
    expect(updated.out).toContain("Models: all");
    expect(updated.out).toContain("Limits: rpm=120 concurrency=2 budget-month=$12345678901.23456789");
    const principal = await new ApiKeyStore({ db: database.db }).authenticate(secret);
    expect(principal).toMatchObject({ name: "renamed", limits: { requestsPerMinute: 120, concurrentRequests: 2 } });
    expect(principal).not.toHaveProperty("allowedModels");
    expect(principal?.limits).not.toHaveProperty("tokensPerMinute");

    const listed = captureIo();
    expect(await runKeysCli(["list"], listed.io, open)).toBe(0);
    const table = listed.out.join("\n");
    expect(table).toMatch(/^ID\s+PREFIX\s+NAME\s+TENANT\s+ROLE\s+CREATED\s+EXPIRES\s+STATUS\s+MODELS\s+LIMITS/);
    expect(table).toMatch(new RegExp(`${prefix}\\s+renamed\\s+cli-limits\\s+user\\s+\\S+\\s+\\S+\\s+active\\s+all\\s+rpm=120 concurrency=2 budget-month=\\$12345678901\\.23456789`));
    expect(table).not.toContain(secret.slice(16));

    const disabled = captureIo();
    expect(await runKeysCli(["update", prefix, "--disable", "--no-expiry"], disabled.io, open)).toBe(0);
    expect(disabled.out).toContain("Status: disabled");
    expect(disabled.out).toContain("Expires: never");
    expect(await new ApiKeyStore({ db: database.db }).authenticate(secret)).toBeNull();
    const relisted = captureIo();
    await runKeysCli(["list"], relisted.io, open);
    expect(relisted.out.join("\n")).toMatch(new RegExp(`${prefix}.*\\snever\\s+disabled\\s`));

    const enabled = captureIo();
    expect(await runKeysCli(["update", prefix, "--enable"], enabled.io, open)).toBe(0);
    expect(enabled.out).toContain("Status: active");
    expect(await new ApiKeyStore({ db: database.db }).authenticate(secret)).toMatchObject({ name: "renamed" });
  });

  it("sets, shows, clears and lists tenant limits, which reach the tenant's keys", async () => {
    const created = captureIo();
    await runKeysCli(["create", "--name", "member", "--tenant", "cli-tenant"], created.io, open);
    const secret = created.out.find((line) => line.startsWith("llm_"))!;

    const shown = captureIo();
    expect(await runKeysCli(["tenant", "cli-tenant"], shown.io, open)).toBe(0);
    expect(shown.out).toEqual(["Tenant cli-tenant limits: none"]);

    const set = captureIo();
    expect(await runKeysCli(["tenant", "cli-tenant", "--rpm", "500", "--tpm", "9000", "--budget-month", "1000"], set.io, open)).toBe(0);
    expect(set.out).toEqual(["Tenant cli-tenant limits: rpm=500 tpm=9000 budget-month=$1000.00"]);
    expect((await new ApiKeyStore({ db: database.db }).authenticate(secret))?.tenantLimits).toEqual({
      requestsPerMinute: 500,
      tokensPerMinute: 9_000,
      budgetUsdNanosPerMonth: 1_000_000_000_000n,
    });

    const cleared = captureIo();
    expect(await runKeysCli(["tenant", "cli-tenant", "--clear", "tpm", "--concurrency", "8"], cleared.io, open)).toBe(0);
    expect(cleared.out).toEqual(["Tenant cli-tenant limits: rpm=500 concurrency=8 budget-month=$1000.00"]);

    await runKeysCli(["tenant", "cli-tenant-b", "--budget-day", "0.5"], captureIo().io, open);
    const listed = captureIo();
    expect(await runKeysCli(["tenants"], listed.io, open)).toBe(0);
    const table = listed.out.join("\n");
    expect(table).toMatch(/^TENANT\s+UPDATED\s+LIMITS/);
    expect(table).toMatch(/cli-tenant\s+\S+\s+rpm=500 concurrency=8 budget-month=\$1000\.00/);
    expect(table).toMatch(/cli-tenant-b\s+\S+\s+budget-day=\$0\.50/);
    expect(table.indexOf("cli-tenant ")).toBeLessThan(table.indexOf("cli-tenant-b"));
  });

  it("exits 1 when updating a key that does not exist", async () => {
    const { io, err } = captureIo();
    expect(await runKeysCli(["update", "nope", "--rpm", "1"], io, open)).toBe(1);
    expect(err.join("\n")).toMatch(/no API key with id or prefix nope/);
  });

  it("exits 1 when revoking a key that does not exist", async () => {
    const { io, err } = captureIo();
    expect(await runKeysCli(["revoke", "nope"], io, open)).toBe(1);
    expect(err.join("\n")).toMatch(/no API key/);
  });
});
