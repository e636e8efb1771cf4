/**
 * `node bench/profile.ts` (after `npm run build:server`): the gateway's CPU profile under the unary
 * load of `npm run bench`'s CPU rows. One gateway with the embedded defaults and the bench catalogue
 * (bench/echo → the 16-token simulator, through the openai adapter), pinned like the bench, runs
 * under `node --cpu-prof`; h2load sends PROFILE_WARMUP then PROFILE_CALLS gRPC Generate calls at
 * c=32 (PROFILE_PROTOCOL=connect: Connect JSON over HTTP/1.1; PROFILE_CACHE=1: cache mode FORCE on one
 * prompt, so all but the first call are cache hits). The gateway stops with SIGTERM, which
 * writes the profile; the script prints the top PROFILE_TOP (15) functions by self time and the
 * profile's path (open it in Chrome DevTools or VS Code for the call tree), then self time by
 * package or folder. `node bench/profile.ts FILE.cpuprofile` prints the tables for a saved profile.
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import { h2load, useH2load } from "./h2load.ts";
import { log, Procs, sleep } from "./procs.ts";
import { grpcFrame, pb } from "./proto.ts";
import { LOAD_CPU, startGateway, startSimulator, writeCatalogue } from "./setup.ts";
import { fmt, table } from "./stats.ts";

const CALLS = Number(process.env.PROFILE_CALLS ?? 20_000);
const WARMUP = Number(process.env.PROFILE_WARMUP ?? 3000);
const TOP = Number(process.env.PROFILE_TOP ?? 15);
const CONNECT = process.env.PROFILE_PROTOCOL === "connect";
/** PROFILE_CACHE=1: every call asks for cache mode FORCE with one prompt, so all but the first are cache hits. */
const CACHE = process.env.PROFILE_CACHE === "1";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Self time per function (name, file, line), largest first, in µs, with the profile's total. */
function selfTimes(profile: Profile): { total: number; rows: { name: string; where: string; micros: number }[] } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const byKey = new Map<string, { name: string; where: string; micros: number }>();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]!);
    const dt = profile.timeDeltas[i] ?? 0;
    total += dt;
    if (!node) continue;
    const f = node.callFrame;
    const path = f.url.replace(/^file:\/\//, "");
    const file = path.includes("/node_modules/") ? path.replace(/.*\/node_modules\//, "") : path.replace(/.*\/dist\//, "dist/");
    const where = file === "" ? "" : `${file}:${f.lineNumber + 1}`;
    const name = f.functionName || "(anonymous)";
    const key = `${name} ${where}`;
    const entry = byKey.get(key) ?? { name, where, micros: 0 };
    entry.micros += dt;
    byKey.set(key, entry);
  }
  return { total, rows: [...byKey.values()].sort((a, b) => b.micros - a.micros) };
}

/** A package (node_modules), a folder of ours (dist/src/…), Node's internals, or V8's own entries. */
function groupOf(r: { name: string; where: string }): string {
  if (r.where === "") return r.name.startsWith("(") ? r.name : "native (V8/libuv)";
  if (r.where.startsWith("node:")) return "node internals";
  if (r.where.startsWith("wasm:")) return "wasm (PGlite)";
  const ours = /^dist\/(src\/[^/]+|gen)/.exec(r.where);
  if (ours) return `ours: ${ours[1]}`;
  const pkg = /^(@[^/]+\/[^/]+|[^/]+)\//.exec(r.where);
  return pkg ? pkg[1]! : r.where;
}

function report(profileFile: string, what: string): void {
  const { total, rows } = selfTimes(JSON.parse(readFileSync(profileFile, "utf8")) as Profile);
  console.log(`top ${TOP} functions by self time, ${what}`);
  console.log(
    table(
      ["function", "where", "self ms", "self %"],
      rows.slice(0, TOP).map((r) => [r.name, r.where, fmt(r.micros / 1000, 0), fmt((r.micros / total) * 100, 1)]),
      2,
    ),
  );
  const groups = new Map<string, number>();
  for (const r of rows) groups.set(groupOf(r), (groups.get(groupOf(r)) ?? 0) + r.micros);
  console.log(`\nself time by package or folder (busy time only: idle excluded)`);
  const busy = total - (groups.get("(idle)") ?? 0);
  console.log(
    table(
      ["where", "self ms", "% of busy"],
      [...groups].filter(([g]) => g !== "(idle)").sort((a, b) => b[1] - a[1]).slice(0, TOP).map(([g, us]) => [g, fmt(us / 1000, 0), fmt((us / busy) * 100, 1)]),
    ),
  );
  console.log(`profile: ${profileFile}`);
}

async function main(): Promise<void> {
  useH2load(process.env.H2LOAD ?? "/usr/bin/h2load");
  const work = mkdtempSync(join(tmpdir(), "llm-profile-"));
  const profDir = join(work, "profile");
  const procs = new Procs();
  try {
    const sim = await startSimulator(procs, "simulator", ["--output-tokens", "16"]);
    const catalogue = writeCatalogue(work, sim.port, sim.port);
    const gw = await startGateway(procs, { name: "gateway (profiled)", workDir: work, catalogue, dataDir: join(work, "data"), nodeArgs: ["--cpu-prof", `--cpu-prof-dir=${profDir}`] });
    const body = join(work, CONNECT ? "generate.json" : "generate.grpc");
    if (CONNECT) writeFileSync(body, JSON.stringify({ model: "bench/echo", messages: [{ role: "ROLE_USER", content: "Say hello to the benchmark." }], maxOutputTokens: 16, ...(CACHE ? { cache: { mode: "CACHE_MODE_FORCE" } } : {}) }));
    else {
      const req = create(pb.GenerateRequestSchema, { model: "bench/echo", messages: [{ role: pb.Role.USER, content: "Say hello to the benchmark." }], maxOutputTokens: 16 });
      if (CACHE) req.cache = create(pb.CachePolicySchema, { mode: pb.CacheMode.FORCE });
      writeFileSync(body, grpcFrame(toBinary(pb.GenerateRequestSchema, req)));
    }
    const headers: Record<string, string> = CONNECT
      ? { "content-type": "application/json", "connect-protocol-version": "1", authorization: `Bearer ${gw.apiKey}` }
      : { "content-type": "application/grpc", te: "trailers", authorization: `Bearer ${gw.apiKey}` };
    const url = `http://127.0.0.1:${gw.port}/llm.v1.LlmService/Generate`;
    for (const [what, n] of [["warm-up", WARMUP], ["profiled load", CALLS]] as const) {
      const r = await h2load({ url, bodyFile: body, headers, h1: CONNECT, clients: 32, requests: n, cpu: LOAD_CPU, workDir: work, timeoutMs: 600_000 });
      log(`${what}: ${n}${CACHE ? " cache-hit" : ""} calls at c=32 over ${CONNECT ? "Connect (HTTP/1.1 JSON)" : "gRPC"}: ${fmt(r.rps, 0)} req/s, errors ${r.httpErrors}`);
    }
    await sleep(1000);
    await procs.stop(gw.child, 30_000);
    const file = readdirSync(profDir).find((f) => f.endsWith(".cpuprofile"));
    if (!file) throw new Error(`no profile in ${profDir}`);
    report(join(profDir, file), `gateway under ${CALLS} unary calls at c=32 over ${CONNECT ? "Connect" : "gRPC"} (after ${WARMUP} warm-up; the profile covers the gateway's whole life)`);
  } finally {
    await procs.stopAll();
  }
}

// `node bench/profile.ts FILE.cpuprofile`: only the tables, for a profile taken before.
if (process.argv[2]?.endsWith(".cpuprofile")) report(process.argv[2], process.argv[2]);
else await main();
