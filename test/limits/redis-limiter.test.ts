import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Limiter } from "../../src/limits/limiter.js";
import { openRedisConnection, type RedisConnection } from "../../src/limits/redis-connection.js";
import { RedisLimiter, type RedisLimiterOptions } from "../../src/limits/redis-limiter.js";
import { adminClient, describeWithRedis, spawnRedisServer, uniqueKeyPrefix, type OwnRedisServer } from "../helpers/redis.js";
import { errorOf, key, limiterContract, tenant, ticketOf } from "./limiter-contract.js";

const R = { tokens: 10, costUsdNanos: 1_000n };

/** A RedisLimiter on its own connection; close() closes both. */
async function redisLimiter(
  url: string,
  options: Omit<RedisLimiterOptions, "client"> = {},
): Promise<{ limiter: RedisLimiter; connection: RedisConnection; close(): Promise<void> }> {
  const connection = openRedisConnection({ url });
  if (!(await connection.ready)) throw new Error(`Redis at ${url} did not answer`);
  const limiter = new RedisLimiter({ keyPrefix: uniqueKeyPrefix(), ...options, client: connection.client });
  return {
    limiter,
    connection,
    close: async () => {
      await limiter.close();
      await connection.close();
    },
  };
}

describeWithRedis("RedisLimiter", (url) => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    await Promise.all(cleanups.splice(0).map((c) => c()));
  });
  const make = async (options: Omit<RedisLimiterOptions, "client"> = {}) => {
    const made = await redisLimiter(url, options);
    cleanups.push(made.close);
    return made;
  };

  describe("contract", () => {
    limiterContract({
      create: async ({ windowMs }) => {
        const { limiter, close } = await redisLimiter(url, { windowMs });
        const wrapped: Limiter = { admit: (s, r) => limiter.admit(s, r), close };
        return wrapped;
      },
      advance: (ms) => sleep(ms),
      now: Date.now,
      clockToleranceMs: 2_000,
      shortWindowMs: 400,
    });
  });

  it("admits exactly 50 of 200 concurrent calls split across two replicas", async () => {
    const keyPrefix = uniqueKeyPrefix();
    const a = await make({ keyPrefix });
    const b = await make({ keyPrefix });
    const subjects = [key("k-replicas", { requestsPerMinute: 50 }), tenant("t-replicas", { requestsPerMinute: 1_000 })];
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? a : b).limiter.admit(subjects, R)),
    );
    expect(results.filter((r) => r.ok)).toHaveLength(50);
  });

  it("holds a concurrency limit across two replicas", async () => {
    const keyPrefix = uniqueKeyPrefix();
    const a = await make({ keyPrefix });
    const b = await make({ keyPrefix });
    const subjects = [key("k-conc-replicas", { concurrentRequests: 5 })];
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? a : b).limiter.admit(subjects, R)),
    );
    const tickets = results.filter((r) => r.ok).map(ticketOf);
    expect(tickets).toHaveLength(5);
    await Promise.all(tickets.map((t) => t.settle(R)));
    ticketOf(await b.limiter.admit(subjects, R));
  });

  it("gives every key it writes a TTL", async () => {
    const keyPrefix = uniqueKeyPrefix();
    const { limiter } = await make({ keyPrefix, windowMs: 60_000, leaseMs: 30_000 });
    const subjects = [
      key("k-ttl", {
        requestsPerMinute: 5,
        tokensPerMinute: 500,
        concurrentRequests: 5,
        budgetUsdNanosPerDay: 10_000n,
        budgetUsdNanosPerMonth: 10_000n,
      }),
    ];
    ticketOf(await limiter.admit(subjects, R));
    const admin = await adminClient(url);
    try {
      const [, found] = (await admin.command(["SCAN", "0", "MATCH", `${keyPrefix}:*`, "COUNT", "100000"])) as [string, string[]];
      const shapes = found
        .map((k) => k.slice(keyPrefix.length + 1).replace(/:\d{6,8}$/, ":<period>").replace(/^ticket:.*$/, "ticket:<id>"))
        .sort();
      expect(shapes).toEqual([
        "conc:key:k-ttl",
        "rpm:key:k-ttl",
        "spend-day:key:k-ttl:<period>",
        "spend-month:key:k-ttl:<period>",
        "ticket:<id>",
        "tpm:key:k-ttl",
      ]);
      for (const k of found) {
        const ttl = Number(await admin.command(["PTTL", k]));
        expect(ttl, k).toBeGreaterThan(0);
        expect(ttl, k).toBeLessThanOrEqual(33 * 86_400_000);
      }
    } finally {
      await admin.close();
    }
  });

  it("frees the slots of a replica that died mid-call when their lease runs out", async () => {
    const keyPrefix = uniqueKeyPrefix();
    const dying = await redisLimiter(url, { keyPrefix, leaseMs: 400 });
    const survivor = await make({ keyPrefix, leaseMs: 400 });
    const subjects = [key("k-lease", { concurrentRequests: 2 })];
    ticketOf(await dying.limiter.admit(subjects, R));
    await dying.close(); // never settles: the process is gone
    // The survivor's own open call keeps renewing, so the key itself stays: only the lease can free the slot.
    const running = ticketOf(await survivor.limiter.admit(subjects, R));
    const refused = errorOf(await survivor.limiter.admit(subjects, R));
    expect(refused.metadata["limit"]).toBe("concurrent_requests");
    await sleep(550);
    ticketOf(await survivor.limiter.admit(subjects, R));
    errorOf(await survivor.limiter.admit(subjects, R)); // the running call still holds its slot
    await running.settle(R);
  });

  it("renews the lease of a call that runs longer than the lease", async () => {
    const keyPrefix = uniqueKeyPrefix();
    const a = await make({ keyPrefix, leaseMs: 400 });
    const b = await make({ keyPrefix, leaseMs: 400 });
    const subjects = [key("k-renew", { concurrentRequests: 1 })];
    const long = ticketOf(await a.limiter.admit(subjects, R));
    await sleep(1_300); // more than three leases
    errorOf(await b.limiter.admit(subjects, R));
    await long.settle(R);
    ticketOf(await b.limiter.admit(subjects, R));
  });

  it("keeps spend exact past 2^53 nanos (no Lua doubles)", async () => {
    const { limiter } = await make();
    const big = 2n ** 60n;
    const subjects = [key("k-big", { budgetUsdNanosPerMonth: big + 1n })];
    ticketOf(await limiter.admit(subjects, { tokens: 1, costUsdNanos: big }));
    ticketOf(await limiter.admit(subjects, { tokens: 1, costUsdNanos: 1n }));
    errorOf(await limiter.admit(subjects, { tokens: 1, costUsdNanos: 1n }));
  });
});

describeWithRedis("RedisLimiter when the server forgets", () => {
  let server: OwnRedisServer;
  beforeAll(async () => {
    server = await spawnRedisServer();
  });
  afterAll(async () => {
    await server?.stop();
  });
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    await Promise.all(cleanups.splice(0).map((c) => c()));
  });
  const make = async (options: Omit<RedisLimiterOptions, "client"> = {}) => {
    const made = await redisLimiter(server.url, options);
    cleanups.push(made.close);
    return made;
  };
  const admin = async () => {
    const client = await adminClient(server.url);
    cleanups.push(client.close);
    return client;
  };

  it("admits after SCRIPT FLUSH (NOSCRIPT falls back to EVAL)", async () => {
    const { limiter } = await make();
    const subjects = [key("k-noscript", { requestsPerMinute: 2 })];
    ticketOf(await limiter.admit(subjects, R));
    await (await admin()).command(["SCRIPT", "FLUSH"]);
    ticketOf(await limiter.admit(subjects, R));
    errorOf(await limiter.admit(subjects, R)); // the state survived; only the script was lost
  });

  it("loses its counters on FLUSHALL but answers without error, and old tickets settle quietly", async () => {
    const keyPrefix = uniqueKeyPrefix();
    const { limiter } = await make({ keyPrefix });
    const subjects = [key("k-flush", { requestsPerMinute: 1, concurrentRequests: 1, budgetUsdNanosPerDay: 1_000n })];
    const before = ticketOf(await limiter.admit(subjects, R));
    errorOf(await limiter.admit(subjects, R));
    const client = await admin();
    await client.command(["FLUSHALL"]);
    const after = ticketOf(await limiter.admit(subjects, R));
    // Settling the ticket from before the flush must not give back what the new one holds.
    await before.settle({ tokens: 0, costUsdNanos: 0n });
    const [, found] = (await client.command(["SCAN", "0", "MATCH", `${keyPrefix}:spend-day:*`, "COUNT", "1000"])) as [string, string[]];
    expect(found).toHaveLength(1);
    expect(await client.command(["GET", found[0] ?? ""])).toBe("1000");
    expect(Number(await client.command(["ZCARD", `${keyPrefix}:conc:key:k-flush`]))).toBe(1);
    await after.settle(R);
  });

  it("fails admissions fast while the server is down, keeps settles for later, and works again after a restart", async () => {
    const { limiter, connection } = await make();
    const subjects = [key("k-restart", { requestsPerMinute: 10, concurrentRequests: 10 })];
    const open = ticketOf(await limiter.admit(subjects, R));
    await server.stop();
    const started = Date.now();
    await expect(limiter.admit(subjects, R)).rejects.toThrow();
    await open.settle(R); // never throws
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(limiter.pendingSettles.queued).toBe(1);

    await server.start();
    await connection.onceReady();
    ticketOf(await limiter.admit(subjects, R)); // scripts are gone after the restart: EVAL brings them back
    await limiter.retryPendingSettles();
    expect(limiter.pendingSettles.queued).toBe(0);
  });

  it("returns from settle while the server stalls, and applies the settle when it answers", async () => {
    const { limiter } = await make({ settleTimeoutMs: 100 });
    const subjects = [key("k-stall", { concurrentRequests: 1 })];
    const ticket = ticketOf(await limiter.admit(subjects, R));
    server.pause();
    try {
      const started = Date.now();
      await ticket.settle(R);
      expect(Date.now() - started).toBeLessThan(1_000);
    } finally {
      server.resume();
    }
    // The same connection answers in order: the settle is applied before this admission.
    ticketOf(await limiter.admit(subjects, R));
  });
});
