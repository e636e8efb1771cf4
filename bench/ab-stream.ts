/**
 * `node bench/ab-stream.ts <root A> <root B>`: CPU µs per streamed token of two builds of the
 * gateway, side by side. Each root is a checkout with `dist/` built. Both gateways run the
 * embedded defaults with a catalogue whose `bench/paced` model is an OpenAI deployment on the
 * paced simulator (64 tokens, 20 ms apart, over SSE), on the gateways' CPU. Each round opens
 * AB_STREAMS (100) concurrent gRPC StreamGenerate calls to each build in turn, for AB_ROUNDS (4)
 * rounds after a warm-up round, alternating which goes first. A row is the gateway process's
 * utime+stime over the round (plus 1 s for the ledger's last write) / tokens received: the
 * streams' starts are included, as in `npm run bench`. AB_PROF=<dir> writes each gateway's CPU
 * profile there (`--cpu-prof`) when it stops. AB_FLOOR=1 adds bench/stream-floor.ts to each round:
 * Node's own cost per streamed token, with nothing of a gateway around it. AB_ENV_A / AB_ENV_B: JSON
 * objects of environment variables for one build (e.g. '{"NODE_OPTIONS":"--max-semi-space-size=0"}').
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import { startBuild, type Build } from "./ab-build.ts";
import { cpuMicros, freePort, log, portOpen, Procs, sleep, waitUntil } from "./procs.ts";
import { GATEWAY_CPU, NODE, ROOT, startSimulator, writeCatalogue } from "./setup.ts";
import { grpcStreams } from "./stream-client.ts";
import { fmt, table } from "./stats.ts";

const roots = process.argv.slice(2).map((r) => resolve(r));
if (roots.length !== 2) throw new Error("usage: node bench/ab-stream.ts <root A> <root B> (each with dist/ built)");
const STREAMS = Number(process.env.AB_STREAMS ?? 100);
const ROUNDS = Number(process.env.AB_ROUNDS ?? 4);
const TOKENS = 64;

const procs = new Procs();
const work = mkdtempSync(join(tmpdir(), "llm-ab-stream-"));

try {
  const paced = await startSimulator(procs, "paced simulator", ["--output-tokens", String(TOKENS), "--inter-token-ms", "20"]);
  const catalogue = writeCatalogue(work, paced.port, paced.port);
  // AB_PROF=<dir>: each gateway writes a CPU profile there when it stops.
  const profile = (root: string, n: number) =>
    process.env.AB_PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.AB_PROF}`, `--cpu-prof-name=${n}-${basename(root)}.cpuprofile`] : [];
  const env = { LLM_CONFIG: catalogue, BENCH_UPSTREAM_KEY: "sk-bench" };
  // AB_ENV_A / AB_ENV_B: JSON objects of environment variables for one build, as in ab-cpu.ts.
  const envOf = (name: string): Record<string, string> => ({ ...env, ...(JSON.parse(process.env[name] ?? "{}") as Record<string, string>) });
  const builds = [
    await startBuild(procs, work, roots[0]!, 0, { env: envOf("AB_ENV_A"), nodeArgs: profile(roots[0]!, 0) }),
    await startBuild(procs, work, roots[1]!, 1, { env: envOf("AB_ENV_B"), nodeArgs: profile(roots[1]!, 1) }),
  ];
  if (process.env.AB_FLOOR === "1") {
    const port = await freePort();
    const child = procs.start("stream floor", NODE, [join(ROOT, "bench/stream-floor.ts"), String(port), String(paced.port)], { cpu: GATEWAY_CPU });
    await waitUntil(`stream floor on port ${port}`, 30_000, () => !child.exited && portOpen(port));
    builds.push({ name: "Node floor", pid: child.pid, port, key: "none" });
  }
  const perToken = new Map<Build, number[]>(builds.map((b) => [b, []]));
  for (let round = 0; round <= ROUNDS; round++) {
    for (const b of round % 2 === 0 ? builds : [...builds].reverse()) {
      const before = cpuMicros(b.pid);
      const run = await grpcStreams({ port: b.port, apiKey: b.key, model: "bench/paced", maxOutputTokens: TOKENS, streamsPerSession: 100, count: STREAMS, timeoutMs: 60_000 });
      await sleep(1000);
      const after = cpuMicros(b.pid);
      const tokens = run.traces.reduce((n, t) => n + t.tokenMs.length, 0);
      const failed = run.traces.filter((t) => !t.ok).length;
      if (before === undefined || after === undefined || tokens === 0) throw new Error(`${b.name} is gone or sent nothing`);
      const us = (after - before) / tokens;
      log(`round ${round}${round === 0 ? " (warm-up)" : ""} ${b.name}: ${fmt(us, 1)} µs/token, ${tokens} tokens, ${failed} failed streams`);
      const firstError = run.traces.find((t) => !t.ok)?.error;
      if (firstError !== undefined) log(`${b.name}: first failure: ${firstError}`);
      if (round > 0) perToken.get(b)!.push(us);
    }
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
  const [a, b] = builds.slice(0, 2).map((x) => perToken.get(x)!);
  const diffs = b!.map((x, i) => x - a![i]!);
  const rows = [
    ...builds.map((x) => [x.name, fmt(median(perToken.get(x)!), 1), perToken.get(x)!.map((v) => fmt(v, 1)).join(", ")]),
    ["B − A (paired)", fmt(median(diffs), 1), diffs.map((v) => fmt(v, 1)).join(", ")],
  ];
  process.stdout.write(
    `\nCPU µs per streamed token (gRPC StreamGenerate, ${STREAMS} concurrent streams of ${TOKENS} tokens 20 ms apart, OpenAI-style upstream over SSE, ${ROUNDS} rounds, median)\n\n${table(["build", "µs/token", "rounds"], rows)}\n`,
  );
} finally {
  await procs.stopAll();
  rmSync(work, { recursive: true, force: true });
}
