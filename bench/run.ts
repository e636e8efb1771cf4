/**
 * `npm run bench`: the gateway side by side with a direct call to the upstream, a raw node:http2
 * gRPC echo (the ceiling), floors that only forward (Go, Node, the openai SDK) and, with
 * BENCH_PEERS=portkey,litellm, Portkey's gateway and LiteLLM's proxy, all on loopback in one run.
 * Prints issue 14's goals (measured, met), CPU per call and per streamed token, then one table, and
 * writes the numbers to bench/results/<timestamp>.json.
 * Env: BENCH_QUICK=1 (small counts), BENCH_PIN=0 (no taskset), BENCH_PEERS=portkey,litellm,
 * DATABASE_URL (everything on keeps its ledger in a database of its own on that server).
 * See bench/README.md for what each row means.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import { h2load, killRunningLoads, useH2load, type LoadResult, type LoadSpec } from "./h2load.ts";
import { delta, readCounters, readSettledCounters, type CounterDelta } from "./metrics.ts";
import { startOtlpReceiver, type OtlpReceiver } from "./otlp-receiver.ts";
import { cpuMicros, cpuMicrosTree, log, pinning, Procs, RssSampler, rssKiB, sleep } from "./procs.ts";
import { benchDatabase, type BenchDatabase } from "./postgres.ts";
import { grpcFrame, pb } from "./proto.ts";
import {
  GATEWAY_CPU,
  LOAD_CPU,
  mintKey,
  redis,
  ROOT,
  startEcho,
  startFloor,
  startFloorProxy,
  startGateway,
  startGoFloor,
  startLiteLLM,
  startPortkey,
  startSimulator,
  writeCatalogue,
  type Gateway,
  type Peer,
  type RedisHandle,
} from "./setup.ts";
import { connectStreams, grpcStreams, sseStreams, type StreamRun } from "./stream-client.ts";
import { grpcUnaryLoad, type UnaryResult } from "./unary-client.ts";
import { measureLoggerCost } from "./logger-cost.ts";
import { fmt, fmtSigned, mib, quantile, table } from "./stats.ts";
import { cpuTable, goalsTable, streamTable, type CpuEntry, type GoalFigures, type StreamEntry } from "./goals.ts";

const QUICK = process.env.BENCH_QUICK === "1";
const PEERS = new Set((process.env.BENCH_PEERS ?? "").split(",").map((s) => s.trim()).filter((s) => s !== ""));

const P = QUICK
  ? { c1Requests: 200, c1Warmup: 50, rounds: 1, tputSeconds: 2, warmUpSeconds: 1, ladder: [250, 1000], ladderSeconds: 2, streams: [50, 200], cacheHits: 200, settleMs: 5000 }
  : { c1Requests: 3000, c1Warmup: 300, rounds: 3, tputSeconds: 4, warmUpSeconds: 1, ladder: [500, 1000, 2000, 3000, 4000], ladderSeconds: 5, streams: [100, 1000], cacheHits: 2000, settleMs: 5000 };
/** Calls per CPU-per-call measurement (c=32, a fixed count, so the gateway's CPU time divides by it exactly). */
const CPU_CALLS = QUICK ? 3000 : 5000;
/** The same for LiteLLM, which spends ~20 ms of CPU on a call. */
const LITELLM_CPU_CALLS = QUICK ? 60 : 200;
const CONCURRENCY = 32;
/** Open loop over h2: clients × streams each may be outstanding; over HTTP/1.1 one per client. */
const LADDER_CLIENTS_H2 = 20;
const LADDER_STREAMS_H2 = 16;
const LADDER_CLIENTS_H1 = 64;
const PACED_TOKENS = 64;
const PACED_INTER_TOKEN_MS = 20;
/** A stream stalled when two consecutive text messages are further apart than this. */
const STALL_MS = 200;
const STREAM_TIMEOUT_MS = QUICK ? 20_000 : 45_000;
const GENERATE = "llm.v1.LlmService/Generate";
const PROMPT = "Say hello to the benchmark.";

interface Row {
  measurement: string;
  target: string;
  rps?: number;
  p50?: number;
  p99?: number;
  p999?: number;
  errors?: number | string;
  note?: string;
  /** p50/p99/p99.9 are differences (printed with a sign). */
  added?: boolean;
}

const rows: Row[] = [];

interface CpuRun {
  micros: number;
  errors: number;
  rps: number;
  /** Cache hits the gateway counted (gRPC targets), of `done` calls. */
  hits: number;
  done: number;
}
/** The streams' CPU per token, RSS and completion, per target and stream count. */
const streamEntries: StreamEntry[] = [];
/** The headline CPU table: µs per call of every target, median of the rounds. */
const cpuEntries: CpuEntry[] = [];
const json: Record<string, unknown> = {};
const procs = new Procs();
const sampler = new RssSampler();
let workDir = "";
let otlp: OtlpReceiver | undefined;
let redisHandle: RedisHandle | undefined;
let database: BenchDatabase | undefined;
let cleaning: Promise<void> | undefined;

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    sampler.stop();
    killRunningLoads();
    await procs.stopAll();
    await otlp?.close();
    await redisHandle?.stop();
    await database?.drop();
    if (workDir && process.env.BENCH_KEEP !== "1") rmSync(workDir, { recursive: true, force: true });
  })();
  return cleaning;
}

for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
  process.on(signal, () => {
    log(`${signal}: stopping every child process`);
    void cleanup().finally(() => process.exit(code));
  });
}
process.on("exit", () => procs.killAllNow());

// ---- request bodies ------------------------------------------------------------------------

function generateBody(cache?: { mode: number }, content = PROMPT): Buffer {
  const req = create(pb.GenerateRequestSchema, {
    model: "bench/echo",
    messages: [{ role: pb.Role.USER, content }],
    maxOutputTokens: 16,
  });
  if (cache) req.cache = create(pb.CachePolicySchema, { mode: cache.mode });
  return grpcFrame(toBinary(pb.GenerateRequestSchema, req));
}

function writeBodies(dir: string): Record<"grpc" | "grpcHit" | "connect" | "openai", string> {
  const files = {
    grpc: join(dir, "generate.grpc"),
    grpcHit: join(dir, "generate-force.grpc"),
    connect: join(dir, "generate.json"),
    openai: join(dir, "chat.json"),
  };
  writeFileSync(files.grpc, generateBody());
  writeFileSync(files.grpcHit, generateBody({ mode: pb.CacheMode.FORCE }, "Answer this once, then from the cache."));
  writeFileSync(files.connect, JSON.stringify({ model: "bench/echo", messages: [{ role: "ROLE_USER", content: PROMPT }], maxOutputTokens: 16 }));
  writeFileSync(files.openai, JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: PROMPT }], max_tokens: 16 }));
  return files;
}

// ---- measuring -----------------------------------------------------------------------------

interface Target {
  name: string;
  url: string;
  bodyFile: string;
  headers: Record<string, string>;
  h1: boolean;
  /** For gRPC through a gateway: where to read the outcome counters. */
  gateway?: Gateway;
  /** The process whose CPU time a call costs (with its children). */
  pid?: number;
}

interface Measured extends LoadResult {
  /** HTTP errors plus non-OK gRPC codes (from the gateway's /metrics). */
  errors: number;
  grpc?: CounterDelta;
}

type Shape = Pick<LoadSpec, "clients" | "streams" | "requests" | "durationS" | "warmUpS" | "rpsPerClient">;

async function measure(t: Target, shape: Shape): Promise<Measured> {
  const counted = t.gateway && !t.h1 ? t.gateway : undefined;
  const before = counted ? await readCounters(counted.port, GENERATE) : undefined;
  const timeoutMs =
    shape.durationS !== undefined ? (shape.durationS + (shape.warmUpS ?? 0) + 60) * 1000 : Math.min(600_000, 60_000 + (shape.requests ?? 0) * 100);
  const r = await h2load({ url: t.url, bodyFile: t.bodyFile, headers: t.headers, h1: t.h1, cpu: LOAD_CPU, workDir, timeoutMs, ...shape });
  const out: Measured = { ...r, errors: r.httpErrors };
  if (counted && before) {
    out.grpc = delta(before, await readSettledCounters(counted.port, GENERATE));
    out.errors += out.grpc.errors;
  }
  const grpcNote = `${out.grpc?.codes ? ` gRPC ${out.grpc.codes}` : ""}${r.unfinished ? `, ${r.unfinished} unfinished at the end` : ""}`;
  log(`  ${t.name}: ${fmt(r.rps, 0)} req/s, p50 ${fmt(r.latency.p50)} ms, p99 ${fmt(r.latency.p99)} ms, errors ${out.errors}${grpcNote}`);
  return out;
}

function errorsCell(m: Measured): string {
  // A target that answered nothing (it died, or never listened) is not a target with no errors.
  if (m.done === 0) return "no answer";
  return m.grpc?.codes ? `${m.errors} (${m.grpc.codes})` : String(m.errors);
}

function row(measurement: string, target: string, m: Measured, note?: string): void {
  const unfinished = m.unfinished ? `${m.unfinished} in flight at the end` : undefined;
  note = [note, unfinished].filter((x) => x !== undefined).join("; ") || undefined;
  rows.push({ measurement, target, rps: m.rps, p50: m.latency.p50, p99: m.latency.p99, p999: m.latency.p999, errors: errorsCell(m), ...(note ? { note } : {}) });
}

/** The run whose measure (RPS, a p99) is the median of the rounds (the lower middle one for an even count). */
function medianBy<T>(runs: T[], value: (run: T) => number): T {
  const sorted = [...runs].sort((a, b) => value(a) - value(b));
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

function roundsNote(rps: number[]): string {
  return rps.length > 1 ? `median of ${rps.length} rounds (RPS ${rps.map((r) => fmt(r, 0)).join(", ")})` : "1 round";
}

function brief(m: Measured): Record<string, number | string> {
  return { rps: m.rps, p50: m.latency.p50, p99: m.latency.p99, p999: m.latency.p999, max: m.latency.max, done: m.done, errors: m.errors, unfinished: m.unfinished, grpcCodes: m.grpc?.codes ?? "", grpcCancelled: m.grpc?.cancelled ?? 0 };
}

interface StreamStats {
  count: number;
  errors: number;
  complete: number;
  stallFree: number;
  ttft: number[];
  gaps: number[];
  messagesPerStream: number;
  wallMs: number;
  firstError?: string;
}

function streamStats(run: StreamRun): StreamStats {
  const ttft: number[] = [];
  const gaps: number[] = [];
  let complete = 0;
  let stallFree = 0;
  let errors = 0;
  let firstError: string | undefined;
  for (const t of run.traces) {
    if (!t.ok) {
      errors++;
      firstError ??= t.error;
    }
    if (t.tokenMs.length > 0) ttft.push(t.tokenMs[0]! - t.startMs);
    let maxGap = 0;
    for (let i = 1; i < t.tokenMs.length; i++) {
      const g = t.tokenMs[i]! - t.tokenMs[i - 1]!;
      gaps.push(g);
      maxGap = Math.max(maxGap, g);
    }
    const full = t.ok && (t.reportedTokens ?? t.tokenMs.length) === PACED_TOKENS;
    if (full) complete++;
    if (full && maxGap <= STALL_MS) stallFree++;
  }
  ttft.sort((a, b) => a - b);
  gaps.sort((a, b) => a - b);
  const perStream = run.traces.map((t) => t.tokenMs.length).sort((a, b) => a - b);
  return {
    count: run.traces.length,
    errors,
    complete,
    stallFree,
    ttft,
    gaps,
    messagesPerStream: quantile(perStream, 0.5),
    wallMs: run.wallMs,
    ...(firstError ? { firstError } : {}),
  };
}

function streamSummary(s: StreamStats): Record<string, number | string> {
  return {
    count: s.count,
    errors: s.errors,
    complete: s.complete,
    stallFree: s.stallFree,
    ttftP50: quantile(s.ttft, 0.5),
    ttftP99: quantile(s.ttft, 0.99),
    gapP50: quantile(s.gaps, 0.5),
    gapP99: quantile(s.gaps, 0.99),
    gapMax: s.gaps.at(-1) ?? Number.NaN,
    textMessagesPerStreamP50: s.messagesPerStream,
    wallMs: s.wallMs,
    firstError: s.firstError ?? "",
  };
}

// ---- the run -------------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = new Date();
  workDir = mkdtempSync(join(tmpdir(), "llm-bench-"));
  const cores = cpus().length;
  if (pinning) execFileSync("taskset", ["-p", "-c", String(LOAD_CPU), String(process.pid)], { stdio: "ignore" });
  const pinNote = pinning
    ? `pinned with taskset: gateways, floors${PEERS.size ? " and peers" : ""} on CPU ${GATEWAY_CPU}; simulators, echo server, h2load and this process (stream client, OTLP receiver) on CPU ${LOAD_CPU}`
    : "not pinned (BENCH_PIN=0 or no taskset)";
  log(`${QUICK ? "quick" : "full"} run on ${cores} cores, node ${process.version}; ${pinNote}; work dir ${workDir}`);

  const h2loadBin = execFileSync("bash", [join(ROOT, "scripts/h2load.sh")], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim().split("\n").at(-1)!;
  useH2load(h2loadBin);
  const h2loadVersion = execFileSync(h2loadBin, ["--version"], { encoding: "utf8" }).split("\n")[0]!;

  // Upstreams and the ceiling.
  const sim = await startSimulator(procs, "simulator", ["--output-tokens", "16"]);
  const paced = await startSimulator(procs, "paced simulator", ["--output-tokens", String(PACED_TOKENS), "--inter-token-ms", String(PACED_INTER_TOKEN_MS)]);
  const echo = await startEcho(procs);
  const floorHttp = await startFloor(procs, sim.port, "http");
  const floorSdk = await startFloor(procs, sim.port, "sdk");
  // The floors on the OpenAI-style HTTP/1.1 API, like Portkey's and LiteLLM's rows.
  const floorNode = await startFloorProxy(procs, sim.port, "node");
  const floorSdkH1 = await startFloorProxy(procs, sim.port, "sdk");
  const goFloorOrWhy = await startGoFloor(procs, workDir, sim.port);
  const floorGo = typeof goFloorOrWhy === "string" ? undefined : goFloorOrWhy;
  const goVersion = floorGo ? execFileSync("go", ["version"], { encoding: "utf8" }).trim() : `Go floor unavailable: ${String(goFloorOrWhy)}`;
  log(
    `simulator :${sim.port} (16 tokens, 0 ms), paced simulator :${paced.port} (${PACED_TOKENS} tokens @ ${PACED_INTER_TOKEN_MS} ms), echo :${echo.port}, gRPC floors :${floorHttp.port} (node:http) :${floorSdk.port} (openai SDK), HTTP/1.1 floors :${floorNode.port} (undici) :${floorSdkH1.port} (openai SDK) ${floorGo ? `:${floorGo.port} (Go)` : "(no Go floor)"}; ${goVersion}`,
  );
  const catalogue = writeCatalogue(workDir, sim.port, paced.port);
  const bodies = writeBodies(workDir);

  otlp = await startOtlpReceiver();
  redisHandle = await redis(workDir);
  // Everything on means the ledger in Postgres too: a database of its own on $DATABASE_URL's server.
  database = await benchDatabase(process.env.DATABASE_URL);
  const onEnv = (withRedis: boolean): Record<string, string> => ({
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${otlp!.port}`,
    OTEL_TRACES_SAMPLER: "always_on",
    ...(withRedis && redisHandle ? { REDIS_URL: redisHandle.url } : {}),
    ...(withRedis && database ? { DATABASE_URL: database.url } : {}),
  });

  // Idle memory with the built-in sim catalogue (no tokenizer to load), on a fresh data directory and
  // again after a restart on it, 5 s after each start; measured alone, before anything else starts.
  log("idle RSS with the default catalogue: first start, then a restart");
  const defaultIdle: (number | undefined)[] = [];
  const defaultDir = join(workDir, "data-default");
  for (const start of ["first start", "restart"]) {
    // No calls go to it: the key the first start prints is not needed.
    const g = await startGateway(procs, { name: `gateway default catalogue (${start})`, workDir, dataDir: defaultDir, apiKey: "unused" });
    await sleep(5000);
    defaultIdle.push(rssKiB(g.child.pid));
    await procs.stop(g.child);
  }
  json.defaultCatalogueIdleKiB = { firstStart: defaultIdle[0], restart: defaultIdle[1] };
  // The same with the embedded database in a worker thread (PGLITE_WORKER=true).
  const workerIdle: (number | undefined)[] = [];
  const workerDefaultDir = join(workDir, "data-default-worker");
  for (const start of ["first start", "restart"]) {
    const g = await startGateway(procs, { name: `gateway default catalogue, PGlite worker (${start})`, workDir, dataDir: workerDefaultDir, apiKey: "unused", env: { PGLITE_WORKER: "true" } });
    await sleep(5000);
    workerIdle.push(rssKiB(g.child.pid));
    await procs.stop(g.child);
  }
  json.defaultCatalogueWorkerIdleKiB = { firstStart: workerIdle[0], restart: workerIdle[1] };

  // Gateways: the bare one starts while the keys of the others are minted (PGlite is single-process).
  log("starting gateways (PGlite start-up takes a few seconds each)");
  const dirs = { bare: join(workDir, "data-bare"), bareWorker: join(workDir, "data-bare-worker"), on: join(workDir, "data-on"), onMem: join(workDir, "data-on-mem") };
  const [bare, bareWorker, onKey, onMemKey] = await Promise.all([
    startGateway(procs, { name: "gateway bare", workDir, catalogue, dataDir: dirs.bare }),
    // The bare gateway with its embedded database in a worker thread (PGLITE_WORKER=true).
    startGateway(procs, { name: "gateway bare, PGlite worker", workDir, catalogue, dataDir: dirs.bareWorker, env: { PGLITE_WORKER: "true" } }),
    mintKey(dirs.on, database ? { DATABASE_URL: database.url } : {}),
    redisHandle ? mintKey(dirs.onMem) : Promise.resolve(undefined),
  ]);
  const onName = `gateway on (${redisHandle ? "Redis" : "in-memory"}, ${database ? "Postgres" : "PGlite"})`;
  const [on, onMem] = await Promise.all([
    startGateway(procs, { name: onName, workDir, catalogue, dataDir: dirs.on, apiKey: onKey, env: onEnv(true) }),
    onMemKey ? startGateway(procs, { name: "gateway on (in-memory)", workDir, catalogue, dataDir: dirs.onMem, apiKey: onMemKey, env: onEnv(false) }) : Promise.resolve(undefined),
  ]);
  const gateways = [bare, bareWorker, on, ...(onMem ? [onMem] : [])];

  let portkey: Peer | undefined;
  let portkeyStatus = "not requested (BENCH_PEERS=portkey)";
  if (PEERS.has("portkey")) {
    const p = await startPortkey(procs, workDir);
    if (typeof p === "string") {
      portkeyStatus = `unavailable: ${p}`;
      log(`Portkey ${portkeyStatus}`);
    } else {
      portkey = p;
      portkeyStatus = `${p.name}, with bench/portkey-sse-fix.ts preloaded (re-wraps event-stream responses: without it its streams fail with TypeError: immutable, its issues #1389/#1550)`;
    }
  }
  let litellm: Peer | undefined;
  let litellmStatus = "not requested (BENCH_PEERS=litellm)";
  if (PEERS.has("litellm")) {
    const p = await startLiteLLM(procs, workDir, sim.port);
    if (typeof p === "string") {
      litellmStatus = `unavailable: ${p}`;
      log(`LiteLLM ${litellmStatus}`);
    } else {
      litellm = p;
      litellmStatus = `${p.name}, one worker, LITELLM_LOG=ERROR, no database; unary rows only (its streams are too slow: ~2.4 ms of CPU per token, so 50 concurrent streams at 20 ms a token all stalled in a quick run)`;
      log(`LiteLLM: ${litellmStatus}, port ${p.port}`);
    }
  }

  await sleep(1000);
  const idle = new Map<number, number | undefined>();
  const watched = [...gateways.map((g) => g.child.pid), ...(portkey ? [portkey.child.pid] : []), ...(litellm ? [litellm.child.pid] : [])];
  for (const pid of watched) idle.set(pid, rssKiB(pid));
  sampler.watch(watched);

  const grpcHeaders = (g: Gateway): Record<string, string> => ({ "content-type": "application/grpc", te: "trailers", authorization: `Bearer ${g.apiKey}` });
  const openaiHeaders = { "content-type": "application/json", authorization: "Bearer sk-bench" };
  const grpcUrl = (port: number): string => `http://127.0.0.1:${port}/${GENERATE}`;
  const direct: Target = { name: "direct (simulator, HTTP/1.1)", url: `http://127.0.0.1:${sim.port}/v1/chat/completions`, bodyFile: bodies.openai, headers: openaiHeaders, h1: true };
  const echoT: Target = { name: "raw h2 gRPC echo (ceiling)", url: grpcUrl(echo.port), bodyFile: bodies.grpc, headers: { "content-type": "application/grpc", te: "trailers" }, h1: false };
  const floorHttpT: Target = { name: "floor: h2 + node:http upstream call", url: grpcUrl(floorHttp.port), bodyFile: bodies.grpc, headers: { "content-type": "application/grpc", te: "trailers" }, h1: false };
  const floorSdkT: Target = { name: "floor: h2 + openai SDK upstream call", url: grpcUrl(floorSdk.port), bodyFile: bodies.grpc, headers: { "content-type": "application/grpc", te: "trailers" }, h1: false };
  const openaiUrl = (port: number): string => `http://127.0.0.1:${port}/v1/chat/completions`;
  const floorGoT: Target | undefined = floorGo
    ? { name: "floor: Go httputil.ReverseProxy (HTTP/1.1)", url: openaiUrl(floorGo.port), bodyFile: bodies.openai, headers: openaiHeaders, h1: true, pid: floorGo.child.pid }
    : undefined;
  const floorNodeT: Target = { name: "floor: node:http + undici Pool.request (HTTP/1.1)", url: openaiUrl(floorNode.port), bodyFile: bodies.openai, headers: openaiHeaders, h1: true, pid: floorNode.child.pid };
  const floorSdkH1T: Target = { name: "floor: node:http + openai SDK, our fetch (HTTP/1.1)", url: openaiUrl(floorSdkH1.port), bodyFile: bodies.openai, headers: openaiHeaders, h1: true, pid: floorSdkH1.child.pid };
  const bareGrpc: Target = { name: "gateway bare, gRPC", url: grpcUrl(bare.port), bodyFile: bodies.grpc, headers: grpcHeaders(bare), h1: false, gateway: bare };
  const bareConnect: Target = {
    name: "gateway bare, Connect (HTTP/1.1 JSON)",
    url: grpcUrl(bare.port),
    bodyFile: bodies.connect,
    headers: { "content-type": "application/json", "connect-protocol-version": "1", authorization: `Bearer ${bare.apiKey}` },
    h1: true,
    gateway: bare,
  };
  const bareWorkerGrpc: Target = { name: "gateway bare, PGlite worker, gRPC", url: grpcUrl(bareWorker.port), bodyFile: bodies.grpc, headers: grpcHeaders(bareWorker), h1: false, gateway: bareWorker };
  const onGrpc: Target = { name: `${on.name}, gRPC`, url: grpcUrl(on.port), bodyFile: bodies.grpc, headers: grpcHeaders(on), h1: false, gateway: on };
  const onMemGrpc: Target | undefined = onMem
    ? { name: `${onMem.name}, gRPC`, url: grpcUrl(onMem.port), bodyFile: bodies.grpc, headers: grpcHeaders(onMem), h1: false, gateway: onMem }
    : undefined;
  const portkeyT: Target | undefined = portkey
    ? {
        name: `${portkey.name} (HTTP/1.1)`,
        url: `http://127.0.0.1:${portkey.port}/v1/chat/completions`,
        bodyFile: bodies.openai,
        headers: { ...openaiHeaders, "x-portkey-provider": "openai", "x-portkey-custom-host": `http://127.0.0.1:${sim.port}/v1` },
        h1: true,
        pid: portkey.child.pid,
      }
    : undefined;
  const litellmT: Target | undefined = litellm
    ? { name: `${litellm.name} (HTTP/1.1)`, url: openaiUrl(litellm.port), bodyFile: bodies.openai, headers: openaiHeaders, h1: true, pid: litellm.child.pid }
    : undefined;

  // 1. Added latency at concurrency 1: like the throughput rows, ROUNDS rounds that each run every
  // target once in turn (P.c1Requests spread over them), so that a slow spell of the VM lands on one
  // round of every target; each row is the target's round with the median p99, and the note has all.
  const c1PerRound = Math.ceil(P.c1Requests / P.rounds);
  log(`added latency at c=1: ${P.rounds} interleaved rounds of ${P.c1Warmup} warm-up + ${c1PerRound} requests per target`);
  const h1Floors = [...(floorGoT ? [floorGoT] : []), floorNodeT, floorSdkH1T];
  const c1Targets = [direct, echoT, floorHttpT, floorSdkT, ...h1Floors, bareGrpc, bareConnect, bareWorkerGrpc, ...(portkeyT ? [portkeyT] : [])];
  const c1Runs = new Map<Target, Measured[]>(c1Targets.map((t) => [t, []]));
  for (let round = 1; round <= P.rounds; round++) {
    for (const t of c1Targets) {
      await h2load({ url: t.url, bodyFile: t.bodyFile, headers: t.headers, h1: t.h1, cpu: LOAD_CPU, workDir, timeoutMs: 120_000, clients: 1, requests: P.c1Warmup });
      c1Runs.get(t)!.push(await measure(t, { clients: 1, requests: c1PerRound }));
    }
  }
  const c1 = (t: Target): Measured => medianBy(c1Runs.get(t)!, (m) => m.latency.p99);
  const c1Rounds = (t: Target): string =>
    P.rounds > 1 ? `round with the median p99 of ${P.rounds} (p99 ${c1Runs.get(t)!.map((m) => fmt(m.latency.p99)).join(", ")} ms)` : "1 round";
  const c1Direct = c1(direct);
  const c1Echo = c1(echoT);
  const c1FloorHttp = c1(floorHttpT);
  const c1FloorSdk = c1(floorSdkT);
  const c1Grpc = c1(bareGrpc);
  const c1Connect = c1(bareConnect);
  const c1Worker = c1(bareWorkerGrpc);
  const c1Portkey = portkeyT ? c1(portkeyT) : undefined;
  const c1FloorNode = c1(floorNodeT);
  json.c1 = {
    ...Object.fromEntries(h1Floors.map((t) => [t.name, brief(c1(t))])),
    direct: brief(c1Direct),
    echo: brief(c1Echo),
    floorHttp: brief(c1FloorHttp),
    floorSdk: brief(c1FloorSdk),
    gatewayGrpc: brief(c1Grpc),
    gatewayConnect: brief(c1Connect),
    gatewayWorkerGrpc: brief(c1Worker),
    ...(c1Portkey ? { portkey: brief(c1Portkey) } : {}),
  };
  row("unary c=1", direct.name, c1Direct, c1Rounds(direct));
  // The machine's own floor for a gRPC round trip at c=1: what no server on it can beat.
  row("unary c=1", echoT.name, c1Echo, `a bare h2 round trip: this machine's latency floor; ${c1Rounds(echoT)}`);
  const added = (target: Target, m: Measured): void => {
    rows.push({
      measurement: "added latency c=1",
      target: target.name,
      rps: m.rps,
      p50: m.latency.p50 - c1Direct.latency.p50,
      p99: m.latency.p99 - c1Direct.latency.p99,
      p999: m.latency.p999 - c1Direct.latency.p999,
      errors: errorsCell(m),
      note: `own p50 ${fmt(m.latency.p50)} / p99 ${fmt(m.latency.p99)} ms; ${c1Rounds(target)}`,
      added: true,
    });
  };
  added(floorHttpT, c1FloorHttp);
  added(floorSdkT, c1FloorSdk);
  for (const t of h1Floors) added(t, c1(t));
  added(bareGrpc, c1Grpc);
  added(bareConnect, c1Connect);
  added(bareWorkerGrpc, c1Worker);
  if (c1Portkey && portkeyT) added(portkeyT, c1Portkey);

  // 2. Throughput at fixed concurrency: ROUNDS rounds, each running every target once in turn, so
  // that a slow spell of the VM lands on one round of every target rather than on one target; each
  // row is the round with the median RPS.
  log(`throughput at c=${CONCURRENCY}: ${P.rounds} interleaved rounds of ${P.tputSeconds} s per target, each after ${P.warmUpSeconds} s warm-up`);
  const tput = async (t: Target): Promise<Measured> => measure(t, { clients: CONCURRENCY, streams: 1, durationS: P.tputSeconds, warmUpS: P.warmUpSeconds });
  const targets = [
    direct,
    echoT,
    floorHttpT,
    floorSdkT,
    ...h1Floors,
    bareGrpc,
    bareWorkerGrpc,
    onGrpc,
    ...(onMemGrpc ? [onMemGrpc] : []),
    ...(portkeyT ? [portkeyT] : []),
    ...(litellmT ? [litellmT] : []),
  ];
  const tputRuns = new Map<Target, Measured[]>(targets.map((t) => [t, []]));
  for (let round = 1; round <= P.rounds; round++) {
    log(` round ${round}/${P.rounds}`);
    for (const t of targets) tputRuns.get(t)!.push(await tput(t));
  }
  const tputResults = new Map<Target, Measured>(targets.map((t) => [t, medianBy(tputRuns.get(t)!, (m) => m.rps)]));
  const tBare = tputResults.get(bareGrpc)!;
  const tOn = tputResults.get(onGrpc)!;
  const sameCostPct = (1 - tOn.rps / tBare.rps) * 100;
  for (const t of targets) {
    const m = tputResults.get(t)!;
    const notes = [roundsNote(tputRuns.get(t)!.map((r) => r.rps))];
    if (t === onGrpc || t === onMemGrpc) notes.push(`cost ${fmt((1 - m.rps / tBare.rps) * 100, 1)}% vs bare (one prompt, default policy: cache not used)`);
    if (t === floorHttpT || t === floorSdkT || h1Floors.includes(t)) notes.push(`the upstream call alone; bare gateway = ${fmt((tBare.rps / m.rps) * 100, 0)}% of it`);
    row(`throughput c=${CONCURRENCY}`, t.name, m, notes.join("; "));
  }
  json.throughput = Object.fromEntries(targets.map((t) => [t.name, { ...brief(tputResults.get(t)!), roundsRps: tputRuns.get(t)!.map((r) => r.rps) }]));

  // 2a. CPU time per call: each target process's utime+stime over a fixed number of calls at c=32,
  // right after the throughput rounds warmed it up. A busy machine moves RPS and latency much more
  // than this. The floors, the gateways, the peers, and the bare gateway answering from its cache.
  const cacheHitT: Target = { name: "gateway bare, gRPC, cache hit", url: grpcUrl(bare.port), bodyFile: bodies.grpcHit, headers: grpcHeaders(bare), h1: false, gateway: bare };
  await h2load({ url: cacheHitT.url, bodyFile: cacheHitT.bodyFile, headers: cacheHitT.headers, cpu: LOAD_CPU, workDir, timeoutMs: 60_000, clients: 1, requests: 1 });
  const cpuTargets = [
    ...h1Floors,
    bareConnect,
    bareGrpc,
    bareWorkerGrpc,
    onGrpc,
    ...(onMemGrpc ? [onMemGrpc] : []),
    cacheHitT,
    ...(portkeyT ? [portkeyT] : []),
    ...(litellmT ? [litellmT] : []),
  ];
  // LiteLLM spends 20+ ms of CPU on a call: fewer calls, or its rounds would take minutes.
  const callsFor = (t: Target): number => (t === litellmT ? LITELLM_CPU_CALLS : CPU_CALLS);
  log(`CPU per call: ${CPU_CALLS} calls (LiteLLM ${LITELLM_CPU_CALLS}) at c=${CONCURRENCY} per target, ${P.rounds} rounds`);
  const cpuRuns = new Map<Target, CpuRun[]>(cpuTargets.map((t) => [t, []]));
  for (let round = 1; round <= P.rounds; round++) {
    log(` round ${round}/${P.rounds}`);
    for (const t of cpuTargets) {
      const pid = t.pid ?? t.gateway?.child.pid;
      const before = cpuMicrosTree(pid);
      const m = await measure(t, { clients: CONCURRENCY, streams: 1, requests: callsFor(t) });
      // The ledger writes its batch after the last answer: wait for that to be counted too.
      await sleep(P.settleMs / 5);
      const after = cpuMicrosTree(pid);
      if (before !== undefined && after !== undefined && m.done > 0) cpuRuns.get(t)!.push({ micros: (after - before) / m.done, errors: m.errors, rps: m.rps, hits: m.grpc?.cacheHits ?? 0, done: m.done });
    }
  }
  const cpuMedian = (t: Target | undefined): number | undefined => {
    const runs = t ? cpuRuns.get(t) : undefined;
    return runs && runs.length > 0 ? medianBy(runs, (r) => r.micros).micros : undefined;
  };
  for (const t of cpuTargets) {
    const runs = cpuRuns.get(t)!;
    if (runs.length === 0) continue;
    const errors = runs.reduce((a, r) => a + r.errors, 0);
    rows.push({
      measurement: `CPU µs per call c=${CONCURRENCY}`,
      target: t.name,
      errors,
      note: `${fmt(cpuMedian(t), 0)} µs (rounds: ${runs.map((r) => fmt(r.micros, 0)).join(", ")}; utime+stime of the process over ${callsFor(t)} calls)${t === cacheHitT ? `; ${runs.map((r) => `${r.hits}/${r.done}`).join(", ")} cache hits` : ""}`,
    });
    cpuEntries.push({ target: t.name, micros: cpuMedian(t)!, rounds: runs.map((r) => r.micros), calls: callsFor(t), errors, protocol: t.h1 ? "HTTP/1.1" : "h2c" });
  }
  json.cpuMicrosPerCall = Object.fromEntries(cpuTargets.map((t) => [t.name, cpuRuns.get(t)!.map((r) => r.micros)]));

  // 2b. The same with a new prompt on every call (bench/unary-client.ts): the "on" gateways look the
  // cache up (a miss) and write it on every call, and no two calls can share a single flight.
  // Interleaved rounds as above.
  log(`unique prompts at c=${CONCURRENCY} (node h2 client): ${P.rounds} interleaved rounds of ${P.tputSeconds} s after ${P.warmUpSeconds} s warm-up`);
  interface UniqueRun {
    result: UnaryResult;
    note: string;
    /** The gateway's utime+stime over the run (warm-up included) / every call of it. */
    cpuPerCall: number | undefined;
  }
  const unique = async (g: Gateway, cacheMode: number, label: string): Promise<UniqueRun> => {
    const before = await readCounters(g.port, GENERATE);
    const cpuBefore = cpuMicros(g.child.pid);
    const r = await grpcUnaryLoad({
      port: g.port,
      apiKey: g.apiKey,
      model: "bench/echo",
      concurrency: CONCURRENCY,
      durationMs: P.tputSeconds * 1000,
      warmUpMs: P.warmUpSeconds * 1000,
      cacheMode,
      tag: `${g.port}-${Date.now()}`,
    });
    // The ledger writes its batch after the last answer: wait for that to be counted too.
    await sleep(P.settleMs / 5);
    const cpuAfter = cpuMicros(g.child.pid);
    const d = delta(before, await readSettledCounters(g.port, GENERATE));
    const cpuPerCall = cpuBefore !== undefined && cpuAfter !== undefined && r.calls > 0 ? (cpuAfter - cpuBefore) / r.calls : undefined;
    log(`  ${label}: ${fmt(r.rps, 0)} req/s, p50 ${fmt(r.latency.p50)} ms, p99 ${fmt(r.latency.p99)} ms, errors ${r.errors} ${r.codes}, CPU ${fmt(cpuPerCall, 0)} µs/call`);
    const note = cacheMode === pb.CacheMode.FORCE ? `cache FORCE: ${d.cacheHits} hits of ${d.ok + d.errors} calls, ${d.flightJoins} shared flights` : "default cache policy (not cached)";
    return { result: r, note, cpuPerCall };
  };
  const uniqueTargets: { g: Gateway; mode: number; label: string }[] = [
    { g: bare, mode: pb.CacheMode.UNSPECIFIED, label: "gateway bare, gRPC" },
    { g: on, mode: pb.CacheMode.FORCE, label: `${on.name}, gRPC` },
    ...(onMem ? [{ g: onMem, mode: pb.CacheMode.FORCE, label: `${onMem.name}, gRPC` }] : []),
  ];
  const uniqueRuns = uniqueTargets.map((): UniqueRun[] => []);
  for (let round = 1; round <= P.rounds; round++) {
    log(` round ${round}/${P.rounds}`);
    for (const [i, u] of uniqueTargets.entries()) uniqueRuns[i]!.push(await unique(u.g, u.mode, u.label));
  }
  const uniqueMedian = uniqueRuns.map((runs) => medianBy(runs, (u) => u.result.rps));
  const uBare = uniqueMedian[0]!.result;
  const uOn = uniqueMedian[1]!.result;
  const uOnMem = uniqueMedian[2]?.result;
  const costPct = (1 - uOn.rps / uBare.rps) * 100;
  const uniqueCpu = uniqueRuns.map((runs) => {
    const cpu = runs.map((x) => x.cpuPerCall).filter((x): x is number => x !== undefined);
    return { median: cpu.length > 0 ? medianBy(cpu, (x) => x) : undefined, rounds: cpu };
  });
  for (const [i, u] of uniqueTargets.entries()) {
    const { result: r, note } = uniqueMedian[i]!;
    const notes = [roundsNote(uniqueRuns[i]!.map((x) => x.result.rps))];
    if (i > 0) notes.push(`cost ${fmt((1 - r.rps / uBare.rps) * 100, 1)}% vs bare`);
    notes.push(note);
    const cpu = uniqueCpu[i]!;
    notes.push(`CPU ${fmt(cpu.median, 0)} µs/call (rounds ${cpu.rounds.map((x) => fmt(x, 0)).join(", ")}; warm-up included)`);
    if (cpu.median !== undefined) {
      cpuEntries.push({ target: `${u.label}, unique prompts${i > 0 ? ", cache FORCE (miss + write)" : ""}`, micros: cpu.median, rounds: cpu.rounds, calls: 0, errors: uniqueRuns[i]!.reduce((a, x) => a + x.result.errors, 0), protocol: "h2c (Node client)" });
    }
    rows.push({ measurement: `unique prompts c=${CONCURRENCY}`, target: u.label, rps: r.rps, p50: r.latency.p50, p99: r.latency.p99, p999: r.latency.p999, errors: r.codes ? `${r.errors} (${r.codes})` : String(r.errors), note: notes.join("; ") });
  }
  const uBrief = (r: UnaryResult, runs: UniqueRun[]): Record<string, unknown> => ({
    rps: r.rps,
    p50: r.latency.p50,
    p99: r.latency.p99,
    p999: r.latency.p999,
    done: r.latency.count,
    errors: r.errors,
    codes: r.codes,
    roundsRps: runs.map((x) => x.result.rps),
    cpuMicrosPerCall: runs.map((x) => x.cpuPerCall ?? null),
  });
  json.uniquePrompts = { bare: uBrief(uBare, uniqueRuns[0]!), on: uBrief(uOn, uniqueRuns[1]!), ...(uOnMem ? { onInMemory: uBrief(uOnMem, uniqueRuns[2]!) } : {}) };
  json.everythingOnCostPercent = { uniquePrompts: costPct, samePrompt: sameCostPct };

  // 3. Open-loop ladder.
  const ladder = async (t: Target): Promise<Record<string, unknown>[]> => {
    const out: Record<string, unknown>[] = [];
    const clients = t.h1 ? LADDER_CLIENTS_H1 : LADDER_CLIENTS_H2;
    for (const rate of rates) {
      const m = await measure(t, { clients, streams: t.h1 ? 1 : LADDER_STREAMS_H2, durationS: P.ladderSeconds, rpsPerClient: rate / clients });
      row(`open loop ${rate}/s`, t.name, m, `achieved ${fmt((m.rps / rate) * 100, 0)}% of offered`);
      out.push({ offered: rate, ...brief(m) });
    }
    return out;
  };
  // The fixed rates (comparable across runs) plus 50% and 90% of what the bare gateway managed closed-loop.
  const rates = [...new Set([...P.ladder, ...[0.5, 0.9].map((f) => Math.max(50, Math.round((tBare.rps * f) / 50) * 50))])].sort((a, b) => a - b);
  log(`open-loop ladder ${rates.join(", ")} req/s, ${P.ladderSeconds} s each`);
  json.ladder = { [bareGrpc.name]: await ladder(bareGrpc), ...(portkeyT ? { [portkeyT.name]: await ladder(portkeyT) } : {}) };

  // 4. Streaming: many concurrent streams to the paced model: direct, the bare gateway over gRPC and
  // over Connect (HTTP/1.1, JSON), and the peers over SSE. Each target's CPU per token is its
  // utime+stime over the run / (streams × tokens), the streams' starts included.
  const streamJson: Record<string, unknown>[] = [];
  let perStreamKiB: number | undefined;
  log("streaming warm-up: 20 streams through the gateway over gRPC and over Connect");
  const gwStream = { apiKey: bare.apiKey, model: "bench/paced", maxOutputTokens: PACED_TOKENS, timeoutMs: STREAM_TIMEOUT_MS };
  await grpcStreams({ ...gwStream, port: bare.port, count: 20, streamsPerSession: 100 });
  await connectStreams({ ...gwStream, port: bare.port, count: 20 });
  await sleep(500);
  interface TimedStreams {
    stats: StreamStats;
    cpuPerToken: number | undefined;
    rssBefore: number | undefined;
    /** Peak RSS over the run, sampled every 50 ms. */
    rssOpen: number | undefined;
  }
  const timed = async (pid: number, n: number, go: () => Promise<StreamRun>): Promise<TimedStreams> => {
    const rssBefore = rssKiB(pid);
    const cpuBefore = cpuMicrosTree(pid);
    // Streams do not all stay open at once (1000 take longer to start than one lasts): the peak RSS
    // over the run, sampled every 50 ms, stands for "with the streams open".
    let rssOpen = rssBefore;
    const rssTimer = setInterval(() => (rssOpen = Math.max(rssOpen ?? 0, rssKiB(pid) ?? 0)), 50);
    const stats = streamStats(await go());
    clearInterval(rssTimer);
    const cpuAfter = cpuMicrosTree(pid);
    const cpuPerToken = cpuBefore !== undefined && cpuAfter !== undefined ? (cpuAfter - cpuBefore) / (n * PACED_TOKENS) : undefined;
    await sleep(500);
    return { stats, cpuPerToken, rssBefore, rssOpen };
  };
  const peerStreams = (port: number, extra: Partial<Parameters<typeof sseStreams>[0]>, n: number): Promise<StreamRun> =>
    sseStreams({ port, model: "gpt-4o-mini", maxTokens: PACED_TOKENS, count: n, timeoutMs: STREAM_TIMEOUT_MS, ...extra });
  for (const n of P.streams) {
    log(`streaming: ${n} concurrent streams, ${PACED_TOKENS} tokens @ ${PACED_INTER_TOKEN_MS} ms (direct SSE, gateway gRPC, gateway Connect${portkey ? ", Portkey SSE" : ""})`);
    const d = streamStats(await peerStreams(paced.port, {}, n));
    await sleep(500);
    const g = await timed(bare.child.pid, n, () => grpcStreams({ ...gwStream, port: bare.port, count: n, streamsPerSession: 100 }));
    const c = await timed(bare.child.pid, n, () => connectStreams({ ...gwStream, port: bare.port, count: n }));
    const pk = portkey
      ? await timed(portkey.child.pid, n, () =>
          peerStreams(portkey.port, { headers: { "x-portkey-provider": "openai", "x-portkey-custom-host": `http://127.0.0.1:${paced.port}/v1` } }, n),
        )
      : undefined;
    const perStream = g.rssOpen !== undefined && g.rssBefore !== undefined ? (g.rssOpen - g.rssBefore) / n : undefined;
    if (n === Math.max(...P.streams)) perStreamKiB = perStream;
    log(
      `  direct: ttft p50 ${fmt(quantile(d.ttft, 0.5))} ms, errors ${d.errors}; gateway gRPC: ttft p50 ${fmt(quantile(g.stats.ttft, 0.5))} ms, stall-free ${g.stats.stallFree}/${n}, errors ${g.stats.errors}${g.stats.firstError ? ` (${g.stats.firstError})` : ""}, ${fmt(g.cpuPerToken, 0)} µs/token; Connect: stall-free ${c.stats.stallFree}/${n}, errors ${c.stats.errors}${c.stats.firstError ? ` (${c.stats.firstError})` : ""}, ${fmt(c.cpuPerToken, 0)} µs/token`,
    );
    const ttftRow = (label: string, s: StreamStats, a: StreamStats | undefined): void => {
      rows.push({
        measurement: `${n} streams TTFT${a ? " added" : ""}`,
        target: label,
        p50: quantile(s.ttft, 0.5) - (a ? quantile(a.ttft, 0.5) : 0),
        p99: quantile(s.ttft, 0.99) - (a ? quantile(a.ttft, 0.99) : 0),
        p999: quantile(s.ttft, 0.999) - (a ? quantile(a.ttft, 0.999) : 0),
        errors: s.errors,
        note: `stall-free ${s.stallFree}/${s.count}, complete ${s.complete}; ${s.messagesPerStream} text msgs/stream; wall ${fmt(s.wallMs / 1000, 1)} s${s.firstError ? `; first error: ${s.firstError}` : ""}`,
        added: a !== undefined,
      });
    };
    const gapRow = (label: string, t: TimedStreams, extra = ""): void => {
      rows.push({
        measurement: `${n} streams gap added`,
        target: label,
        p50: quantile(t.stats.gaps, 0.5) - quantile(d.gaps, 0.5),
        p99: quantile(t.stats.gaps, 0.99) - quantile(d.gaps, 0.99),
        p999: quantile(t.stats.gaps, 0.999) - quantile(d.gaps, 0.999),
        errors: t.stats.errors,
        note: `gaps p50/p99 direct ${fmt(quantile(d.gaps, 0.5), 1)}/${fmt(quantile(d.gaps, 0.99), 1)}, this ${fmt(quantile(t.stats.gaps, 0.5), 1)}/${fmt(quantile(t.stats.gaps, 0.99), 1)} ms; CPU ${fmt(t.cpuPerToken, 0)} µs/token${extra}`,
        added: true,
      });
    };
    const targets: [string, TimedStreams | undefined, string][] = [
      ["gateway bare, gRPC StreamGenerate", g, `; RSS ${perStream === undefined ? "–" : fmt(perStream, 1)} KiB/stream, peak ${mib(g.rssOpen)} MiB`],
      ["gateway bare, Connect StreamGenerate (HTTP/1.1 JSON)", c, `; peak RSS ${mib(c.rssOpen)} MiB`],
      [`${portkey?.name ?? "portkey"} SSE (sse-fix preload)`, pk, ""],
    ];
    ttftRow("direct (paced simulator, SSE)", d, undefined);
    for (const [label, t, extra] of targets) {
      if (!t) continue;
      ttftRow(label, t.stats, d);
      gapRow(label, t, extra);
      streamEntries.push({ target: label, streams: n, cpuPerToken: t.cpuPerToken, complete: t.stats.complete, stallFree: t.stats.stallFree, errors: t.stats.errors, rssOpenKiB: t.rssOpen });
    }
    streamJson.push({
      streams: n,
      direct: streamSummary(d),
      ...Object.fromEntries(
        targets.filter(([, t]) => t).map(([label, t]) => [label, { ...streamSummary(t!.stats), cpuMicrosPerToken: t!.cpuPerToken, rssKiBBefore: t!.rssBefore, rssKiBOpen: t!.rssOpen }]),
      ),
      rssKiBPerStream: perStream,
    });
  }
  json.streaming = streamJson;

  // 5. Cache hits at c=1.
  const cacheRun = async (g: Gateway | undefined, label: string): Promise<void> => {
    if (!g) {
      rows.push({ measurement: "cache hit c=1", target: label, note: "n/a (no Redis)" });
      return;
    }
    const t: Target = { name: g.name, url: grpcUrl(g.port), bodyFile: bodies.grpcHit, headers: grpcHeaders(g), h1: false, gateway: g };
    await h2load({ url: t.url, bodyFile: t.bodyFile, headers: t.headers, cpu: LOAD_CPU, workDir, timeoutMs: 60_000, clients: 1, requests: 1 });
    await sleep(300);
    const cpuBefore = cpuMicros(g.child.pid);
    const m = await measure(t, { clients: 1, requests: P.cacheHits });
    const cpuAfter = cpuMicros(g.child.pid);
    const cpu = cpuBefore !== undefined && cpuAfter !== undefined && m.done > 0 ? (cpuAfter - cpuBefore) / m.done : undefined;
    row("cache hit c=1", label, m, `${m.grpc?.cacheHits ?? 0}/${m.done} hits; CPU ${fmt(cpu, 0)} µs/call; h2 echo floor at c=1 p50 ${fmt(c1Echo.latency.p50)} / p99 ${fmt(c1Echo.latency.p99)} ms`);
    (json.cacheHits as Record<string, unknown>)[label] = { ...brief(m), hits: m.grpc?.cacheHits ?? 0 };
  };
  json.cacheHits = {};
  log(`cache hits at c=1: ${P.cacheHits} requests after one that stores`);
  await cacheRun(bare, "gateway bare (embedded defaults: in-memory cache)");
  await cacheRun(bareWorker, "gateway bare, PGlite worker");
  await cacheRun(onMem ?? (redisHandle ? undefined : on), "gateway on, in-memory cache");
  await cacheRun(redisHandle ? on : undefined, "gateway on, Redis cache");

  // 6. Memory after the load.
  sampler.stop();
  log(`waiting ${P.settleMs / 1000} s for the gateways to settle, then reading RSS`);
  await sleep(P.settleMs);
  const rssJson: Record<string, unknown> = {};
  const memRow = (name: string, pid: number, extra?: string): void => {
    const after = rssKiB(pid);
    const i = idle.get(pid);
    const peak = sampler.peak(pid);
    rows.push({ measurement: "RSS MiB", target: name, note: `idle ${mib(i)}, peak ${mib(peak)}, after ${mib(after)}${extra ?? ""}` });
    rssJson[name] = { idleKiB: i, peakKiB: peak, afterKiB: after };
  };
  rows.push({ measurement: "RSS MiB", target: "gateway, default catalogue (idle only)", note: `idle 5 s after start: ${mib(defaultIdle[0])} first start (new data dir), ${mib(defaultIdle[1])} after a restart` });
  rows.push({ measurement: "RSS MiB", target: "the same, PGlite worker (idle only)", note: `idle 5 s after start: ${mib(workerIdle[0])} first start (new data dir), ${mib(workerIdle[1])} after a restart` });
  memRow(bare.name, bare.child.pid, `; ${perStreamKiB === undefined ? "–" : fmt(perStreamKiB, 1)} KiB per open stream (${Math.max(...P.streams)} streams)`);
  memRow(bareWorker.name, bareWorker.child.pid);
  memRow(on.name, on.child.pid);
  if (onMem) memRow(onMem.name, onMem.child.pid);
  if (portkey) memRow(portkey.name, portkey.child.pid);
  if (litellm) memRow(litellm.name, litellm.child.pid);
  (rssJson[bare.name] as Record<string, unknown>).perOpenStreamKiB = perStreamKiB;
  json.rss = rssJson;
  json.otlp = { spans: otlp.spans(), exportRequests: otlp.requests() };
  rows.push({ measurement: "OTLP", target: "receiver (gateway on)", note: `${otlp.spans()} spans in ${otlp.requests()} export requests` });

  // Report.
  const header = ["measurement", "target", "RPS", "p50 ms", "p99 ms", "p99.9 ms", "errors", "notes"];
  const cells = rows.map((r) => [
    r.measurement,
    r.target,
    r.rps === undefined ? "" : fmt(r.rps, 0),
    r.p50 === undefined ? "" : r.added ? fmtSigned(r.p50) : fmt(r.p50),
    r.p99 === undefined ? "" : r.added ? fmtSigned(r.p99) : fmt(r.p99),
    r.p999 === undefined ? "" : r.added ? fmtSigned(r.p999) : fmt(r.p999),
    r.errors === undefined ? "" : String(r.errors),
    r.note ?? "",
  ]);
  const context = [
    `llm-service benchmark, ${QUICK ? "quick (BENCH_QUICK=1)" : "full"} run, ${started.toISOString()}`,
    `${cores} cores, node ${process.version}, ${h2loadVersion}; ${pinNote}`,
    `upstream: simulator 16 tokens 0 ms; paced ${PACED_TOKENS} tokens @ ${PACED_INTER_TOKEN_MS} ms. Redis: ${redisHandle ? redisHandle.url : "n/a"}. Everything-on ledger: ${database ? "Postgres (a database of its own on $DATABASE_URL's server)" : "PGlite (no DATABASE_URL)"}`,
    `Portkey: ${portkeyStatus}. LiteLLM: ${litellmStatus}. ${goVersion}`,
    `everything-on cost (1 - on/bare RPS): ${fmt(costPct, 1)}% with unique prompts (cache miss + write per call), ${fmt(sameCostPct, 1)}% with h2load's one prompt (cache not used).`,
    `"added" = gateway - direct (same percentile). Stall-free: completed with ${PACED_TOKENS} tokens and no gap > ${STALL_MS} ms.`,
  ];
  const fewStreams = Math.min(...P.streams);
  const manyStreams = Math.max(...P.streams);
  const streamAt = (target: string, n: number): StreamEntry | undefined => streamEntries.find((e) => e.target === target && e.streams === n);
  const GRPC_STREAM = "gateway bare, gRPC StreamGenerate";
  const CONNECT_STREAM = "gateway bare, Connect StreamGenerate (HTTP/1.1 JSON)";
  const figures: GoalFigures = {
    gatewayConnect: cpuMedian(bareConnect),
    gatewayGrpc: cpuMedian(bareGrpc),
    portkey: cpuMedian(portkeyT),
    onUnique: uniqueCpu[1]?.median,
    bareUnique: uniqueCpu[0]?.median,
    onSamePrompt: cpuMedian(onGrpc),
    bareSamePrompt: cpuMedian(bareGrpc),
    cacheHit: cpuMedian(cacheHitT),
    c1ConnectP50: c1Connect.latency.p50,
    c1NodeFloorP50: c1FloorNode.latency.p50,
    c1GrpcP50: c1Grpc.latency.p50,
    c1GrpcFloorP50: c1FloorHttp.latency.p50,
    fewStreams,
    tokenGrpc: streamAt(GRPC_STREAM, fewStreams)?.cpuPerToken,
    tokenConnect: streamAt(CONNECT_STREAM, fewStreams)?.cpuPerToken,
    manyStreams,
    manyGrpc: streamAt(GRPC_STREAM, manyStreams),
    manyConnect: streamAt(CONNECT_STREAM, manyStreams),
  };
  json.goals = figures;
  // Issue 18: the access line's CPU through the winston logger, beside the writer it replaced.
  const loggerCost = await measureLoggerCost({ lines: QUICK ? 20_000 : 100_000, rounds: QUICK ? 1 : 3, ...(pinning ? { cpu: GATEWAY_CPU } : {}), progress: log });
  json.loggerCost = loggerCost.rows;
  const headline = [
    goalsTable(figures),
    cpuTable(cpuEntries, { ...(floorGoT ? { go: floorGoT.name } : {}), node: floorNodeT.name, ...(portkeyT ? { portkey: portkeyT.name } : {}) }),
    streamTable(streamEntries),
    loggerCost.text,
  ];
  process.stdout.write(`\n${context.join("\n")}\n\n${headline.join("\n\n")}\n\n${table(header, cells)}\n`);

  json.meta = { started: started.toISOString(), quick: QUICK, cores, node: process.version, h2load: h2loadVersion, pinned: pinning, pinNote, redis: redisHandle?.url ?? null, postgres: database !== undefined, portkey: portkeyStatus, litellm: litellmStatus, go: goVersion, params: P, concurrency: CONCURRENCY, stallMs: STALL_MS };
  json.table = rows;
  const resultsDir = join(ROOT, "bench/results");
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, `${started.toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(file, `${JSON.stringify(json, (_k, v: unknown) => (typeof v === "number" && !Number.isFinite(v) ? null : v), 2)}\n`);
  log(`wrote ${file}`);
}

main()
  .then(async () => {
    await cleanup();
    log("done; every child process stopped");
  })
  .catch(async (err: unknown) => {
    log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    await cleanup();
    process.exit(1);
  });
