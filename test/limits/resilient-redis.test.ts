import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { createLimiter } from "../../src/limits/index.js";
import type { AdmitResult, Limiter, Reservation } from "../../src/limits/limiter.js";
import type { ResilientLimiter } from "../../src/limits/resilient-limiter.js";
import { describeWithRedis, spawnRedisServer, uniqueKeyPrefix, type OwnRedisServer } from "../helpers/redis.js";
import { key } from "./limiter-contract.js";

const R: Reservation = { tokens: 10, costUsdNanos: 1_000n };

/** onDegraded that records calls and lets a test await the next one. */
function degradedSpy() {
  const calls: boolean[] = [];
  let waiters: { active: boolean; resolve: () => void }[] = [];
  return {
    calls,
    onDegraded: (active: boolean) => {
      calls.push(active);
      const ready = waiters.filter((w) => w.active === active);
      waiters = waiters.filter((w) => w.active !== active);
      for (const w of ready) w.resolve();
    },
    next: (active: boolean) => new Promise<void>((resolve) => waiters.push({ active, resolve })),
  };
}

async function admitMany(limiter: Limiter, n: number, subjects: Parameters<Limiter["admit"]>[0]): Promise<AdmitResult[]> {
  const results: AdmitResult[] = [];
  for (let i = 0; i < n; i++) results.push(await limiter.admit(subjects, R));
  return results;
}
const admitted = (results: AdmitResult[]) => results.filter((r) => r.ok).length;

describeWithRedis("ResilientLimiter on a real Redis that stalls and restarts", () => {
  let server: OwnRedisServer;
  beforeAll(async () => {
    server = await spawnRedisServer();
  });
  afterAll(async () => {
    server?.resume();
    await server?.stop();
  });
  const open: Limiter[] = [];
  afterEach(async () => {
    server.resume();
    await Promise.all(open.splice(0).map((l) => l.close()));
  });
  async function make(replicaCount: number) {
    const spy = degradedSpy();
    const limiter = (await createLimiter({
      redisUrl: server.url,
      replicaCount,
      onDegraded: spy.onDegraded,
      keyPrefix: uniqueKeyPrefix(),
      // Generous for a loaded CI machine; a stopped server never answers, so the test does not depend on it.
      timeoutMs: 250,
      probeIntervalMs: 50,
    })) as ResilientLimiter;
    open.push(limiter);
    return { limiter, spy };
  }

  it("keeps admitting from memory with divided limits while Redis is stopped (SIGSTOP), then returns to Redis", async () => {
    const { limiter, spy } = await make(2);
    const subjects = [key("k-sigstop", { requestsPerMinute: 6 })];
    expect(admitted(await admitMany(limiter, 2, subjects))).toBe(2); // Redis: 2 of 6
    expect(spy.calls).toEqual([]);

    server.pause();
    const whileStopped = await admitMany(limiter, 4, subjects);
    expect(spy.calls).toEqual([true]);
    expect(admitted(whileStopped)).toBe(3); // memory: ceil(6 / 2)
    const recovered = spy.next(false);
    server.resume();
    await recovered;
    expect(limiter.degraded).toBe(false);

    // Back on Redis: it holds the 2 from before and the 1 admission it received while stopped
    // (answered late, after the fallback had taken over), so 3 more of 6.
    const after = await admitMany(limiter, 5, subjects);
    expect(admitted(after)).toBe(3);
    expect(spy.calls).toEqual([true, false]);
  });

  it("survives a Redis restart (lost keys, lost scripts) without an error response", async () => {
    const { limiter, spy } = await make(1);
    const subjects = [key("k-restart", { requestsPerMinute: 100, concurrentRequests: 10 })];
    expect(admitted(await admitMany(limiter, 3, subjects))).toBe(3);

    await server.stop();
    const whileDown = await admitMany(limiter, 3, subjects);
    expect(admitted(whileDown)).toBe(3);
    expect(spy.calls).toEqual([true]);

    const recovered = spy.next(false);
    await server.start();
    await recovered;
    const after = await admitMany(limiter, 3, subjects);
    expect(admitted(after)).toBe(3);
    expect(spy.calls).toEqual([true, false]);
  });
});
