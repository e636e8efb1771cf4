/**
 * The real service as a child process (`node --import tsx src/main.ts`), its JSON log read from
 * stdout line by line, for tests that need more than one replica or that watch the log.
 * Every process started here is killed by `killServiceProcesses()` (call it in afterEach/afterAll).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";

const ROOT = resolve(import.meta.dirname, "../..");
const NODE = join(ROOT, "node_modules/.bin/node");

export interface LogLine {
  level?: string;
  message?: string;
  [field: string]: unknown;
}

export interface ServiceProcess {
  readonly child: ChildProcess;
  /** Every JSON log line so far, in order. */
  readonly logs: LogLine[];
  stderr(): string;
  /**
   * Resolves with the first log line at index ≥ `from` (past or future) that matches; rejects after
   * timeoutMs or when the process exits first.
   */
  waitForLog(predicate: (line: LogLine) => boolean, timeoutMs: number, from?: number): Promise<LogLine>;
  /** Resolves when stderr (so far or later) matches; rejects after timeoutMs or when the process exits first. */
  waitForStderr(pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray>;
  /** Resolves with the exit code (or the signal's name) once the process has exited. */
  readonly exited: Promise<number | string>;
}

export interface RunningService extends ServiceProcess {
  readonly port: number;
  readonly baseUrl: string;
  /** SIGTERM, then waits for the exit (the ledger is flushed by then); resolves with the exit code. */
  stop(timeoutMs?: number): Promise<number | string>;
}

const started = new Set<ChildProcess>();

/** Kills (SIGKILL) every service process still running: a failed test must not leave one behind. */
export function killServiceProcesses(): void {
  for (const child of started) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
  started.clear();
}

/** Starts the service with exactly `env` (plus PATH and HOME), so a developer's settings cannot leak in. */
export function spawnService(env: Record<string, string>): ServiceProcess {
  const child = spawn(NODE, ["--import", "tsx", "src/main.ts"], {
    cwd: ROOT,
    env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? tmpdir(), ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  started.add(child);
  const logs: LogLine[] = [];
  let stderr = "";
  const listeners = new Set<() => void>();
  const notify = () => listeners.forEach((l) => l());
  createInterface({ input: child.stdout! }).on("line", (line) => {
    try {
      logs.push(JSON.parse(line) as LogLine);
    } catch {
      logs.push({ message: line });
    }
    notify();
  });
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
    notify();
  });
  const exited = new Promise<number | string>((resolve) =>
    child.once("exit", (code, signal) => {
      started.delete(child);
      resolve(code ?? signal ?? "unknown");
      notify();
    }),
  );

  /** Resolves with what `find` finds (now or later); rejects after timeoutMs, or when the process exits first. */
  function waitUntil<T>(find: () => T | undefined, what: string, timeoutMs: number): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = find();
        if (found !== undefined) {
          done();
          resolve(found);
        } else if (child.exitCode !== null || child.signalCode !== null) {
          done();
          reject(new Error(`the service exited (${child.exitCode ?? child.signalCode}) before ${what}; stderr: ${stderr}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no ${what} within ${timeoutMs} ms; stderr: ${stderr}; log: ${JSON.stringify(logs.slice(-20))}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        listeners.delete(check);
      };
      listeners.add(check);
      check();
    });
  }

  return {
    child,
    logs,
    stderr: () => stderr,
    waitForLog: (predicate, timeoutMs, from = 0) => waitUntil(() => logs.slice(from).find(predicate), "the log line", timeoutMs),
    waitForStderr: (pattern, timeoutMs) => waitUntil(() => pattern.exec(stderr) ?? undefined, `stderr matching ${pattern}`, timeoutMs),
    exited,
  };
}

/** Rejects when `p` has not settled within `ms`. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
    }),
  ]);
}

/** Starts the service on a free loopback port and waits for its "listening" log line. */
export async function startService(env: Record<string, string>, startTimeoutMs = 30_000): Promise<RunningService> {
  const service = spawnService({ PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "info", ...env });
  const listening = await service.waitForLog((l) => l.message === "listening", startTimeoutMs);
  const port = Number(String(listening["address"]).split(":").at(-1));
  if (!(port > 0)) throw new Error(`no port in the listening line: ${JSON.stringify(listening)}`);
  return {
    ...service,
    port,
    baseUrl: `http://127.0.0.1:${port}`,
    async stop(timeoutMs = 15_000) {
      if (service.child.exitCode === null && service.child.signalCode === null) service.child.kill("SIGTERM");
      return withTimeout(service.exited, timeoutMs, "the service's exit after SIGTERM");
    },
  };
}
