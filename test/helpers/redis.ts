/**
 * Where the limiter tests get Redis. The shared test server runs when REDIS_URL is set
 * (`export "$(scripts/redis.sh | tail -n1)"`); the suite is skipped with a note when it is not, and
 * fails under CI=true when it is not, so CI cannot pass without having tested against Redis.
 * Tests that stop, flush or restart a server start their own (spawnRedisServer), so they never
 * disturb the test files running in parallel against the shared one.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { createClient } from "@redis/client";
import { describe, it } from "vitest";

/**
 * A describe() whose body needs a real Redis server; the body gets REDIS_URL.
 * Without it the suite is skipped (its name says why) or, under CI=true, fails.
 */
export function describeWithRedis(name: string, body: (redisUrl: string) => void): void {
  const url = process.env["REDIS_URL"];
  if (url !== undefined && url !== "") {
    describe(name, () => body(url));
  } else if (process.env["CI"] === "true") {
    describe(name, () => {
      it("has a Redis server to run against", () => {
        throw new Error(
          "REDIS_URL is not set and CI=true: the Redis tests must run in CI. " +
            'Start a server with `export "$(scripts/redis.sh | tail -n1)"`.',
        );
      });
    });
  } else {
    console.warn(`${name}: skipped, REDIS_URL is not set (start Redis with scripts/redis.sh)`);
    describe.skip(`${name} [skipped: REDIS_URL is not set; export "$(scripts/redis.sh | tail -n1)" to run]`, () =>
      body(""),
    );
  }
}

/** A key prefix no other test uses, so tests on one server never see each other's counters. */
export function uniqueKeyPrefix(): string {
  return `test:limits:${randomUUID()}`;
}

/** A plain client for inspecting or flushing a server from a test. */
export async function adminClient(url: string): Promise<{
  command(args: string[]): Promise<unknown>;
  close(): Promise<void>;
}> {
  const client = createClient({ url, socket: { reconnectStrategy: false } });
  client.on("error", () => {});
  await client.connect();
  return {
    command: (args) => client.sendCommand(args),
    close: async () => {
      if (client.isOpen) client.destroy();
    },
  };
}

/** A redis-server this test owns: it may pause (SIGSTOP), resume, stop and start it again. */
export interface OwnRedisServer {
  readonly url: string;
  readonly port: number;
  /** SIGSTOP: the server keeps its connections but answers nothing. */
  pause(): void;
  /** SIGCONT. */
  resume(): void;
  /** Stops the server (SIGTERM, then SIGKILL after 5 s) and waits for it to exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port, empty (nothing is persisted), and waits until it is ready. */
  start(): Promise<void>;
}

function redisServerBinary(): string {
  for (const candidate of ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]) {
    if (existsSync(candidate)) return candidate;
  }
  return "redis-server";
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Starts a private, non-persistent redis-server on a free loopback port (redis-server must be installed). */
export async function spawnRedisServer(): Promise<OwnRedisServer> {
  const port = await freePort();
  let child: ChildProcess | undefined;

  const start = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const proc = spawn(
        redisServerBinary(),
        ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", ""],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      child = proc;
      let output = "";
      const timer = setTimeout(() => fail(new Error(`redis-server on port ${port} not ready after 10 s:\n${output}`)), 10_000);
      function fail(err: Error): void {
        clearTimeout(timer);
        proc.kill("SIGKILL");
        reject(err);
      }
      proc.once("error", fail);
      proc.once("exit", (code) => fail(new Error(`redis-server exited (${code}) before it was ready:\n${output}`)));
      proc.stdout?.on("data", (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes("Ready to accept connections")) {
          clearTimeout(timer);
          proc.removeAllListeners("exit");
          proc.stdout?.removeAllListeners("data");
          proc.stdout?.resume();
          resolve();
        }
      });
      proc.stderr?.on("data", (chunk: Buffer) => {
        output += chunk.toString();
      });
    });

  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    pause: () => void child?.kill("SIGSTOP"),
    resume: () => void child?.kill("SIGCONT"),
    stop: async () => {
      const proc = child;
      if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
      proc.kill("SIGCONT");
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    },
    start,
  };
}
