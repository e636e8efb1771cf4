/**
 * Runs h2load (nghttp2) against one URL and reads its per-request log (--log-file: start µs,
 * HTTP status, duration µs). h2load sees HTTP statuses only: gRPC errors (HTTP 200 with a
 * non-zero grpc-status trailer) are counted by the caller from the gateway's /metrics.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { pinTo } from "./procs.ts";
import { summarize, type Latency } from "./stats.ts";

export interface LoadSpec {
  url: string;
  /** Request body file. */
  bodyFile: string;
  headers: Record<string, string>;
  /** HTTP/1.1 instead of h2c (prior knowledge). */
  h1?: boolean;
  clients: number;
  /** Concurrent streams per client (-m); 1 for HTTP/1.1. */
  streams?: number;
  /** Total requests (-n), or a duration in seconds (-D). */
  requests?: number;
  durationS?: number;
  warmUpS?: number;
  /** Requests per second per client (open loop). */
  rpsPerClient?: number;
  cpu?: number;
  workDir: string;
  /** Hard limit on the h2load process, ms. */
  timeoutMs: number;
}

export interface LoadResult {
  /** Requests that finished (any status). */
  done: number;
  /** HTTP 200 responses (and the few whose status h2load lost at the warm-up boundary). */
  ok: number;
  /** Non-200 responses and failed streams (status -1); with -n, also requests that never finished. */
  httpErrors: number;
  /** With -D: requests still in flight when the duration ended (a backlog, not an error). */
  unfinished: number;
  rps: number;
  latency: Latency;
  /** The h2load summary line, for the log. */
  summary: string;
}

let seq = 0;
const running = new Set<ChildProcess>();

/** Kills the h2load runs still going (the benchmark is stopping). */
export function killRunningLoads(): void {
  for (const p of running) p.kill("SIGKILL");
}
let bin = "h2load";

/** Uses this h2load binary (what scripts/h2load.sh printed). */
export function useH2load(path: string): void {
  bin = path;
}

export async function h2load(spec: LoadSpec): Promise<LoadResult> {
  const logFile = join(spec.workDir, `h2load-${++seq}.log`);
  const args = [
    ...pinTo(spec.cpu),
    bin,
    "-c", String(spec.clients),
    "-m", String(spec.streams ?? 1),
    "-t", "1",
    "-d", spec.bodyFile,
    `--log-file=${logFile}`,
  ];
  if (spec.h1) args.push("--h1");
  for (const [k, v] of Object.entries(spec.headers)) args.push("-H", `${k}: ${v}`);
  if (spec.durationS !== undefined) {
    args.push("-D", `${spec.durationS}`);
    if (spec.warmUpS) args.push(`--warm-up-time=${spec.warmUpS}`);
  } else {
    args.push("-n", String(spec.requests ?? 1000));
  }
  if (spec.rpsPerClient !== undefined) args.push(`--rps=${spec.rpsPerClient}`);
  args.push(spec.url);

  const out = await new Promise<string>((resolve, reject) => {
    const p = spawn(args[0]!, args.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
    running.add(p);
    let text = "";
    p.stdout.setEncoding("utf8").on("data", (d: string) => (text += d));
    p.stderr.setEncoding("utf8").on("data", (d: string) => (text += d));
    const timer = setTimeout(() => p.kill("SIGKILL"), spec.timeoutMs);
    p.on("error", reject);
    p.on("close", (code, signal) => {
      clearTimeout(timer);
      running.delete(p);
      if (code === 0) resolve(text);
      else reject(new Error(`h2load ${signal ? `killed (${signal}, over ${spec.timeoutMs} ms)` : `exited ${code}`}: ${text.slice(-800)}`));
    });
  });

  const durations: number[] = [];
  let ok = 0;
  let bad = 0;
  let first = Infinity;
  let last = 0;
  for (const line of readFileSync(logFile, "utf8").split("\n")) {
    if (line === "") continue;
    const [startUs, status, durUs] = line.split("\t").map(Number) as [number, number, number];
    // 0: a request that straddled the end of --warm-up-time, whose status h2load did not keep.
    if (status === 200 || status === 0) ok++;
    else bad++;
    durations.push(durUs / 1000);
    first = Math.min(first, startUs);
    last = Math.max(last, startUs + durUs);
  }
  rmSync(logFile, { force: true });

  const reqLine = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(out);
  const finished = /finished in ([\d.]+)(m?s), ([\d.]+) req\/s/.exec(out);
  const started = reqLine ? Number(reqLine[2]) : durations.length;
  const notDone = reqLine ? Math.max(0, started - Number(reqLine[3])) : 0;
  // h2load's req/s covers the measured period; the log's span is the fallback.
  const rps = finished ? Number(finished[3]) : durations.length / Math.max(1e-9, (last - first) / 1e6);
  return {
    done: durations.length,
    ok,
    httpErrors: bad + (spec.durationS === undefined ? notDone : 0),
    unfinished: spec.durationS === undefined ? 0 : notDone,
    rps,
    latency: summarize(durations),
    summary: `${finished?.[0] ?? "?"}; ${reqLine?.[0] ?? "?"}`,
  };
}
