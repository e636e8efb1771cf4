/**
 * Child processes of one benchmark run: started on loopback, optionally pinned to a CPU with
 * taskset, all stopped at the end, on SIGINT/SIGTERM and on errors (no orphans).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { openSync, readdirSync, readFileSync, closeSync } from "node:fs";
import net from "node:net";

export function log(line: string): void {
  process.stderr.write(`bench [${((performance.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${line}\n`);
}
const t0 = performance.now();

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A free loopback TCP port (the kernel's pick, released before use). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

/** True when something accepts TCP connections on 127.0.0.1:port. */
export function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port });
    s.setTimeout(1000);
    s.once("connect", () => (s.destroy(), resolve(true)));
    s.once("error", () => resolve(false));
    s.once("timeout", () => (s.destroy(), resolve(false)));
  });
}

/** Polls `check` every 100 ms until it returns true; throws after `timeoutMs`. */
export async function waitUntil(what: string, timeoutMs: number, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(100);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** Resident set size of a process in KiB (VmRSS), or undefined when it is gone. */
export function rssKiB(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** CPU time (user + system) a process has used so far, in µs, from /proc/<pid>/stat; undefined when it is gone. */
export function cpuMicros(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS) * 1e6;
  } catch {
    return undefined;
  }
}

/**
 * CPU time of a process and its live descendants (a peer that forks workers), in µs; the
 * process's own figure includes the threads of each (PGlite's worker, Go's and uvloop's).
 * Undefined when the process is gone.
 */
export function cpuMicrosTree(pid: number | undefined): number | undefined {
  const own = cpuMicros(pid);
  if (own === undefined || pid === undefined) return undefined;
  let total = own;
  for (const child of childPids(pid)) total += cpuMicrosTree(child) ?? 0;
  return total;
}

function childPids(pid: number): number[] {
  try {
    const out: number[] = [];
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").trim();
      if (text !== "") out.push(...text.split(/\s+/).map(Number));
    }
    return out;
  } catch {
    return [];
  }
}

/** USER_HZ: /proc reports CPU time in these ticks (100 on Linux builds that matter here). */
const CLOCK_TICKS = (() => {
  const r = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" });
  const n = Number(r.stdout?.trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

/** Whether taskset can pin (and BENCH_PIN is not 0). */
export const pinning: boolean =
  process.env.BENCH_PIN !== "0" && spawnSync("taskset", ["-c", "0", "true"]).status === 0;

/** The CPU-affinity prefix for a command, or [] when not pinning. */
export function pinTo(cpu: number | undefined): string[] {
  return pinning && cpu !== undefined ? ["taskset", "-c", String(cpu)] : [];
}

export interface StartOptions {
  env?: Record<string, string>;
  /** `env` is the whole environment, not additions to this process's. */
  replaceEnv?: boolean;
  /** CPU to pin to (ignored when not pinning). */
  cpu?: number;
  /** File for stdout (default /dev/null); stderr goes to `stderrFile` or is kept in memory. */
  stdoutFile?: string;
  stderrFile?: string;
}

export interface Child {
  name: string;
  proc: ChildProcess;
  pid: number;
  /** Captured stderr (when not sent to a file), up to 64 KiB. */
  stderr(): string;
  exited: boolean;
}

export class Procs {
  private readonly children: Child[] = [];

  start(name: string, command: string, args: string[], opts: StartOptions = {}): Child {
    const prefix = pinTo(opts.cpu);
    const argv = [...prefix, command, ...args];
    const out = openSync(opts.stdoutFile ?? "/dev/null", "a");
    const err = opts.stderrFile ? openSync(opts.stderrFile, "a") : "pipe";
    const proc = spawn(argv[0]!, argv.slice(1), {
      env: opts.replaceEnv ? { ...opts.env } : { ...process.env, ...opts.env },
      stdio: ["ignore", out, err],
    });
    closeSync(out);
    if (typeof err === "number") closeSync(err);
    if (proc.pid === undefined) throw new Error(`could not start ${name} (${argv.join(" ")})`);
    let captured = "";
    proc.stderr?.setEncoding("utf8");
    proc.stderr?.on("data", (d: string) => {
      if (captured.length < 65536) captured += d;
    });
    const child: Child = { name, proc, pid: proc.pid, stderr: () => captured, exited: false };
    proc.on("exit", (code, signal) => {
      child.exited = true;
      if (!stopping.has(child)) log(`${name} (pid ${child.pid}) exited: ${signal ?? `code ${code}`}`);
    });
    this.children.push(child);
    return child;
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited. */
  async stop(child: Child, graceMs = 5000): Promise<void> {
    stopping.add(child);
    if (child.exited) return;
    const gone = new Promise<void>((r) => child.proc.once("exit", () => r()));
    child.proc.kill("SIGTERM");
    const timer = setTimeout(() => child.proc.kill("SIGKILL"), graceMs);
    await gone;
    clearTimeout(timer);
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.children.map((c) => this.stop(c)));
  }

  /** Last resort, synchronous (process 'exit'): SIGKILL whatever is left. */
  killAllNow(): void {
    for (const c of this.children) if (!c.exited) c.proc.kill("SIGKILL");
  }

  pids(): number[] {
    return this.children.map((c) => c.pid);
  }
}

const stopping = new Set<Child>();

/** Samples the RSS of some processes every 200 ms and keeps each one's peak. */
export class RssSampler {
  private readonly peaks = new Map<number, number>();
  private timer: NodeJS.Timeout | undefined;

  watch(pids: number[]): void {
    this.stop();
    const sample = (): void => {
      for (const pid of pids) {
        const v = rssKiB(pid);
        if (v !== undefined && v > (this.peaks.get(pid) ?? 0)) this.peaks.set(pid, v);
      }
    };
    sample();
    this.timer = setInterval(sample, 200);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  peak(pid: number): number | undefined {
    return this.peaks.get(pid);
  }
}

/**
 * The resident mappings of a process from /proc/<pid>/smaps, largest first: size and Rss in KiB and
 * what backs them (a file, [heap], [stack] or "" for anonymous memory). A WebAssembly memory shows as
 * one anonymous mapping of many GiB (V8 reserves its guard region), resident only where touched.
 */
export function residentMappings(pid: number | undefined): { range: string; sizeKiB: number; rssKiB: number; name: string }[] {
  if (pid === undefined) return [];
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/smaps`, "utf8");
  } catch {
    return [];
  }
  const out: { range: string; sizeKiB: number; rssKiB: number; name: string }[] = [];
  let current: { range: string; sizeKiB: number; rssKiB: number; name: string } | undefined;
  for (const line of text.split("\n")) {
    const head = /^([0-9a-f]+-[0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      current = { range: head[1]!, sizeKiB: 0, rssKiB: 0, name: head[2] ?? "" };
      out.push(current);
      continue;
    }
    const field = /^(Size|Rss):\s+(\d+) kB/.exec(line);
    if (field && current) current[field[1] === "Size" ? "sizeKiB" : "rssKiB"] = Number(field[2]);
  }
  return out.sort((a, b) => b.rssKiB - a.rssKiB);
}
