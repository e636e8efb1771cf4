/**
 * `node bench/processes-per-core.ts [root]`: what a second service process on the second core adds.
 * Row "1 process": one gateway pinned to CPU 0, h2load (c=32) pinned to CPU 1. Row "2 processes":
 * two gateways, pinned to CPU 0 and CPU 1, each under its own h2load (c=16) at the same time, unpinned.
 * Each round sends PPC_CALLS (4,000) gRPC `Generate` calls in all, for PPC_ROUNDS (3) rounds after a
 * warm-up, alternating which row goes first. A process's CPU per call is its utime+stime over the round
 * (plus 1 s for the ledger's last write) / the calls it answered; req/s is the calls of the round / its
 * wall time. Both gateways run the embedded defaults (their own PGlite, in-memory cache and limits)
 * from `<root>/dist` (default: this checkout; `npm run build:server` first).
 * Two processes on one machine is what `WORKERS=2` (node:cluster) or two replicas would give; the
 * README's "Running more than one" says which this project offers and why. On a 2-core machine the
 * load generators share the cores with the gateways in the second row, so its req/s is a floor.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import { startBuild, type Build } from "./ab-build.ts";
import { h2load, useH2load, type LoadResult } from "./h2load.ts";
import { cpuMicros, log, Procs, sleep } from "./procs.ts";
import { grpcFrame, pb } from "./proto.ts";
import { GATEWAY_CPU, LOAD_CPU, ROOT } from "./setup.ts";
import { fmt, table } from "./stats.ts";

const root = resolve(process.argv[2] ?? ROOT);
const CALLS = Number(process.env.PPC_CALLS ?? 4000);
const ROUNDS = Number(process.env.PPC_ROUNDS ?? 3);

useH2load(process.env.H2LOAD ?? "/usr/bin/h2load");
const procs = new Procs();
const work = mkdtempSync(join(tmpdir(), "llm-ppc-"));
const body = join(work, "generate.grpc");
const request = create(pb.GenerateRequestSchema, { model: "sim/echo", messages: [{ role: pb.Role.USER, content: "Say hello to the benchmark." }], maxOutputTokens: 16 });
writeFileSync(body, grpcFrame(toBinary(pb.GenerateRequestSchema, request)));

interface Round {
  rps: number;
  /** CPU µs per call of each gateway process. */
  perCall: number[];
  errors: number;
}

/** `calls` in all, split evenly over the gateways, each with its own h2load at once; `pinLoad` pins the load to LOAD_CPU. */
async function round(gateways: Build[], calls: number, clients: number, pinLoad: boolean): Promise<Round> {
  const before = gateways.map((g) => cpuMicros(g.pid));
  const started = performance.now();
  const results: LoadResult[] = await Promise.all(
    gateways.map((g) =>
      h2load({
        url: `http://127.0.0.1:${g.port}/llm.v1.LlmService/Generate`,
        bodyFile: body,
        headers: { "content-type": "application/grpc", te: "trailers", authorization: `Bearer ${g.key}` },
        h1: false,
        ...(pinLoad ? { cpu: LOAD_CPU } : {}),
        workDir: work,
        timeoutMs: 300_000,
        clients,
        streams: 1,
        requests: calls / gateways.length,
      }),
    ),
  );
  const seconds = (performance.now() - started) / 1000;
  await sleep(1000);
  const perCall = gateways.map((g, i) => {
    const after = cpuMicros(g.pid);
    const b = before[i];
    const done = results[i]!.done;
    if (after === undefined || b === undefined || done === 0) throw new Error(`${g.name} is gone`);
    return (after - b) / done;
  });
  const done = results.reduce((n, r) => n + r.done, 0);
  return { rps: done / seconds, perCall, errors: results.reduce((n, r) => n + r.httpErrors, 0) };
}

try {
  const a = await startBuild(procs, work, root, 0, { cpu: GATEWAY_CPU });
  const b = await startBuild(procs, work, root, 1, { cpu: LOAD_CPU });
  const rows = { one: [] as Round[], two: [] as Round[] };
  for (let r = 0; r <= ROUNDS; r++) {
    const order: ("one" | "two")[] = r % 2 === 0 ? ["one", "two"] : ["two", "one"];
    for (const which of order) {
      const result = which === "one" ? await round([a], CALLS, 32, true) : await round([a, b], CALLS, 16, false);
      log(`round ${r}${r === 0 ? " (warm-up)" : ""} ${which}: ${fmt(result.rps, 0)} req/s, ${result.perCall.map((us) => fmt(us, 0)).join(" + ")} µs/call`);
      if (r > 0) rows[which].push(result);
    }
  }
  const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor((xs.length - 1) / 2)]!;
  const line = (name: string, rs: Round[]) => [
    name,
    fmt(median(rs.map((x) => x.rps)), 0),
    rs.map((x) => fmt(x.rps, 0)).join(", "),
    fmt(median(rs.flatMap((x) => x.perCall)), 0),
    rs.map((x) => x.perCall.map((us) => fmt(us, 0)).join("+")).join(", "),
    String(rs.reduce((n, x) => n + x.errors, 0)),
  ];
  process.stdout.write(
    `\nOne gateway process against two on this machine (gRPC Generate, sim/echo, embedded defaults, ${CALLS} calls a round, ${ROUNDS} rounds, median)\n\n` +
      `${table(["processes", "req/s", "rounds", "µs/call", "rounds (per process)", "errors"], [line("1 process (c=32)", rows.one), line("2 processes (c=16 each)", rows.two)])}\n`,
  );
} finally {
  await procs.stopAll();
  rmSync(work, { recursive: true, force: true });
}
