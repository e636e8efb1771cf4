/**
 * `node bench/memory.ts [root]`: where the gateway's memory goes under load. Starts `<root>/dist/src/main.js`
 * (default: this checkout) with the embedded defaults and the built-in sim catalogue, on the gateways' CPU,
 * then: idle RSS; MEM_ROUNDS (3) rounds of MEM_CALLS (20,000) gRPC `Generate` calls at c=32 (h2load),
 * RSS after each; then MEM_STREAMS (1,000) concurrent gRPC `StreamGenerate` calls of 64 tokens 20 ms apart
 * (the sim provider paced by caller metadata) with the peak RSS sampled every 50 ms, how many completed
 * and how many were stall-free (no gap between text messages over 200 ms); then RSS 5 s later.
 * The gateway gets the node flags of the checkout's `npm start` (bench/ab-build.ts). MEM_ENV: JSON object of
 * environment variables for it (e.g. '{"PGLITE_WORKER":"1"}', or '{"NODE_OPTIONS":"--max-semi-space-size=0"}'
 * for V8's own young-generation size, since a flag there wins over the start flags). MEM_INSPECT=1 starts it with the inspector and, after
 * each phase, forces a full collection and reads process.memoryUsage(), so retained memory shows apart
 * from garbage; MEM_SNAPSHOTS=1 also writes a heap snapshot after each unary round and prints what grew
 * between the first and the last (by constructor). The inspector costs memory of its own: read RSS from
 * a run without it.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import { startBuild } from "./ab-build.ts";
import { growthTable, summarizeSnapshot } from "./heap-summary.ts";
import { h2load, useH2load } from "./h2load.ts";
import { Inspector, type MemoryUsage } from "./inspector.ts";
import { cpuMicros, freePort, log, Procs, residentMappings, rssKiB, sleep } from "./procs.ts";
import { grpcFrame, pb } from "./proto.ts";
import { LOAD_CPU } from "./setup.ts";
import { fmt, mib, table } from "./stats.ts";
import { grpcStreams } from "./stream-client.ts";

const root = resolve(process.argv[2] ?? ".");
const CALLS = Number(process.env.MEM_CALLS ?? 20_000);
const ROUNDS = Number(process.env.MEM_ROUNDS ?? 3);
const STREAMS = Number(process.env.MEM_STREAMS ?? 1000);
const INSPECT = process.env.MEM_INSPECT === "1" || process.env.MEM_SNAPSHOTS === "1";
const SNAPSHOTS = process.env.MEM_SNAPSHOTS === "1";
const TOKENS = 64;
const STALL_MS = 200;
const env = JSON.parse(process.env.MEM_ENV ?? "{}") as Record<string, string>;

useH2load(process.env.H2LOAD ?? "/usr/bin/h2load");
const procs = new Procs();
const work = mkdtempSync(join(tmpdir(), "llm-memory-"));
const body = join(work, "generate.grpc");
const request = create(pb.GenerateRequestSchema, { model: "sim/echo", messages: [{ role: pb.Role.USER, content: "Say hello to the benchmark." }], maxOutputTokens: 16 });
writeFileSync(body, grpcFrame(toBinary(pb.GenerateRequestSchema, request)));

const MB = 1e6;
const rows: string[][] = [];
try {
  const inspectPort = INSPECT ? await freePort() : undefined;
  const gw = await startBuild(procs, work, root, 0, { env, nodeArgs: inspectPort ? [`--inspect=127.0.0.1:${inspectPort}`] : [] });
  const inspector = inspectPort ? await Inspector.connect(inspectPort) : undefined;
  const snapshots: string[] = [];
  const phase = async (name: string, extra: string, snapshot = false): Promise<void> => {
    const rss = rssKiB(gw.pid);
    let heap = "";
    if (inspector) {
      const before = await inspector.memoryUsage();
      await inspector.collectGarbage();
      const after = await inspector.memoryUsage();
      const h = (m: MemoryUsage): string => `heap ${fmt(m.heapUsed / MB, 0)}/${fmt(m.heapTotal / MB, 0)}, ext ${fmt(m.external / MB, 0)} (ab ${fmt(m.arrayBuffers / MB, 0)})`;
      heap = `before GC: ${h(before)}; after GC: ${h(after)}, rss ${fmt(after.rss / MB, 0)}`;
      if (snapshot) {
        const file = join(work, `${snapshots.length}.heapsnapshot`);
        await inspector.heapSnapshot(file);
        snapshots.push(file);
      }
    }
    rows.push([name, fmt(((rss ?? 0) * 1024) / MB, 0), extra, heap]);
    log(`${name}: RSS ${mib(rss)} MiB ${extra} ${heap}`);
    if (process.env.MEM_SMAPS === "1") {
      const maps = residentMappings(gw.pid);
      const big = maps.filter((m) => m.rssKiB >= 4096);
      const rest = maps.filter((m) => m.rssKiB < 4096).reduce((sum, m) => sum + m.rssKiB, 0);
      log(`  mappings ≥ 4 MiB resident: ${big.map((m) => `${m.range.slice(0, 12)} ${mib(m.sizeKiB)}/${mib(m.rssKiB)} ${m.name}`).join("; ")}; the rest ${mib(rest)} MiB`);
    }
  };

  await sleep(5000);
  await phase("idle", "", true);
  for (let round = 1; round <= ROUNDS; round++) {
    const cpuBefore = cpuMicros(gw.pid);
    const m = await h2load({
      url: `http://127.0.0.1:${gw.port}/llm.v1.LlmService/Generate`,
      bodyFile: body,
      headers: { "content-type": "application/grpc", te: "trailers", authorization: `Bearer ${gw.key}` },
      h1: false,
      cpu: LOAD_CPU,
      workDir: work,
      timeoutMs: 600_000,
      clients: 32,
      streams: 1,
      requests: CALLS,
    });
    await sleep(1000);
    const us = ((cpuMicros(gw.pid) ?? 0) - (cpuBefore ?? 0)) / Math.max(1, m.done);
    await phase(`after ${round * CALLS} unary`, `${m.ok}/${CALLS} ok, ${fmt(m.rps, 0)} req/s, ${fmt(us, 0)} µs/call`, SNAPSHOTS);
  }

  if (STREAMS > 0) {
    const before = rssKiB(gw.pid) ?? 0;
    let peak = before;
    const timer = setInterval(() => (peak = Math.max(peak, rssKiB(gw.pid) ?? 0)), 50);
    const run = await grpcStreams({
      port: gw.port,
      apiKey: gw.key,
      model: "sim/echo",
      prompt: Array.from({ length: TOKENS }, (_, i) => `word${i}`).join(" "),
      maxOutputTokens: TOKENS,
      timeoutMs: 60_000,
      streamsPerSession: 100,
      count: STREAMS,
      metadata: { "sim-inter-token-ms": "20" },
    });
    clearInterval(timer);
    const complete = run.traces.filter((t) => t.ok && t.tokenMs.length === TOKENS).length;
    const stallFree = run.traces.filter((t) => t.ok && t.tokenMs.length === TOKENS && t.tokenMs.every((ms, i) => i === 0 || ms - t.tokenMs[i - 1]! <= STALL_MS)).length;
    const firstError = run.traces.find((t) => !t.ok)?.error;
    rows.push([`${STREAMS} streams (peak)`, fmt((peak * 1024) / MB, 0), `${complete}/${STREAMS} complete, ${stallFree} stall-free${firstError ? `, first error: ${firstError}` : ""}`, ""]);
    log(`${STREAMS} streams: peak RSS ${mib(peak)} MiB, ${complete} complete, ${stallFree} stall-free`);
    await sleep(5000);
    await phase(`5 s after the streams`, "");
  }
  inspector?.close();
  process.stdout.write(`\nRSS MB (10⁶ bytes) of ${root} with ${JSON.stringify(env)}\n\n${table(["phase", "RSS MB", "load", "inspector (MB)"], rows)}\n`);
  if (snapshots.length >= 2) {
    process.stdout.write(`\nHeap growth, idle → after ${CALLS} unary:\n${growthTable(summarizeSnapshot(snapshots[0]!), summarizeSnapshot(snapshots[1]!))}\n`);
    if (snapshots.length >= 3) {
      process.stdout.write(`\nHeap growth, after ${CALLS} → after ${(snapshots.length - 1) * CALLS} unary:\n${growthTable(summarizeSnapshot(snapshots[1]!), summarizeSnapshot(snapshots.at(-1)!))}\n`);
    }
  }
} finally {
  await procs.stopAll();
  if (process.env.MEM_KEEP !== "1") rmSync(work, { recursive: true, force: true });
  else log(`kept ${work}`);
}
