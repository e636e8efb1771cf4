/**
 * `node bench/ab-cpu.ts <root A> <root B>`: CPU µs per unary call of two builds of the gateway,
 * side by side. Each root is a checkout with `dist/` built (`npm run build:server`); both start
 * with the embedded defaults and the built-in sim catalogue (no upstream), on the gateways' CPU,
 * and h2load sends AB_CALLS (5,000) gRPC `Generate` calls at c=32 to each in turn, for AB_ROUNDS
 * (6) rounds after one warm-up round, alternating which goes first. A row is the gateway process's
 * utime+stime over a round (plus 1 s for the ledger's last write) / calls answered. Interleaving
 * puts a slow spell of a shared machine on both builds, not on one; the paired difference per
 * round is printed too. AB_CACHE=1: every call asks for cache mode FORCE on one prompt, so all but
 * the first are cache hits. AB_ENV_A / AB_ENV_B: JSON objects of environment variables for one build
 * (give the same root twice to measure what a setting costs, e.g. AB_ENV_B='{"LOG_LEVEL":"warn"}').
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import { startBuild, type Build } from "./ab-build.ts";
import { h2load, useH2load } from "./h2load.ts";
import { cpuMicros, log, Procs, sleep } from "./procs.ts";
import { grpcFrame, pb } from "./proto.ts";
import { LOAD_CPU } from "./setup.ts";
import { fmt, table } from "./stats.ts";

const roots = process.argv.slice(2).map((r) => resolve(r));
if (roots.length !== 2) throw new Error("usage: node bench/ab-cpu.ts <root A> <root B> (each with dist/ built)");
const CALLS = Number(process.env.AB_CALLS ?? 5000);
const ROUNDS = Number(process.env.AB_ROUNDS ?? 6);

useH2load(process.env.H2LOAD ?? "/usr/bin/h2load");
const procs = new Procs();
const work = mkdtempSync(join(tmpdir(), "llm-ab-cpu-"));
const body = join(work, "generate.grpc");
const request = create(pb.GenerateRequestSchema, { model: "sim/echo", messages: [{ role: pb.Role.USER, content: "Say hello to the benchmark." }], maxOutputTokens: 16 });
if (process.env.AB_CACHE === "1") request.cache = create(pb.CachePolicySchema, { mode: pb.CacheMode.FORCE });
writeFileSync(body, grpcFrame(toBinary(pb.GenerateRequestSchema, request)));

try {
  const envOf = (name: string): Record<string, string> => JSON.parse(process.env[name] ?? "{}") as Record<string, string>;
  const builds = [await startBuild(procs, work, roots[0]!, 0, { env: envOf("AB_ENV_A") }), await startBuild(procs, work, roots[1]!, 1, { env: envOf("AB_ENV_B") })];
  const perCall = new Map<Build, number[]>(builds.map((b) => [b, []]));
  for (let round = 0; round <= ROUNDS; round++) {
    for (const b of round % 2 === 0 ? builds : [...builds].reverse()) {
      const before = cpuMicros(b.pid);
      const m = await h2load({
        url: `http://127.0.0.1:${b.port}/llm.v1.LlmService/Generate`,
        bodyFile: body,
        headers: { "content-type": "application/grpc", te: "trailers", authorization: `Bearer ${b.key}` },
        h1: false,
        cpu: LOAD_CPU,
        workDir: work,
        timeoutMs: 300_000,
        clients: 32,
        streams: 1,
        requests: CALLS,
      });
      await sleep(1000);
      const after = cpuMicros(b.pid);
      if (before === undefined || after === undefined || m.done === 0) throw new Error(`${b.name} is gone`);
      const us = (after - before) / m.done;
      log(`round ${round}${round === 0 ? " (warm-up)" : ""} ${b.name}: ${fmt(us, 0)} µs/call, ${fmt(m.rps, 0)} req/s`);
      if (round > 0) perCall.get(b)!.push(us);
    }
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
  const [a, b] = builds.map((x) => perCall.get(x)!);
  const diffs = b!.map((x, i) => x - a![i]!);
  const rows = [
    ...builds.map((x) => [x.name, fmt(median(perCall.get(x)!), 0), perCall.get(x)!.map((v) => fmt(v, 0)).join(", ")]),
    ["B − A (paired)", fmt(median(diffs), 0), diffs.map((v) => fmt(v, 0)).join(", ")],
  ];
  process.stdout.write(`\nCPU µs per unary call (gRPC Generate, sim/echo, c=32, ${CALLS} calls a round, ${ROUNDS} rounds, median)\n\n${table(["build", "µs/call", "rounds"], rows)}\n`);
} finally {
  await procs.stopAll();
  rmSync(work, { recursive: true, force: true });
}
