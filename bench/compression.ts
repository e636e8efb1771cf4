/**
 * `npm run bench:compression`: what response compression costs on the direct path. One gateway
 * (embedded defaults, built-in sim catalogue, `sim/echo`), gRPC unary `Generate` by h2load at c=8,
 * with a small answer (below the 1 KiB threshold) and a ~3 KiB one, each with no
 * `grpc-accept-encoding`, with `gzip` and with `br` accepted. Three interleaved rounds (each runs
 * every case once in turn); a row is the median round by CPU. **CPU µs/call** is the gateway's
 * utime+stime over the measured requests; **bytes** is one response's body (the gRPC frame) as sent.
 */
import http2 from "node:http2";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import { h2load, useH2load } from "./h2load.ts";
import { log, Procs } from "./procs.ts";
import { grpcFrame, pb } from "./proto.ts";
import { LOAD_CPU, ROOT, startGateway } from "./setup.ts";
import { fmt, table } from "./stats.ts";

const REQUESTS = Number(process.env.BENCH_COMPRESSION_REQUESTS ?? 4000);
const ROUNDS = 3;
const CLK_TCK = 100;

/** utime + stime of a process, in µs. */
function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLK_TCK;
}

/** One call's response body size (the gRPC frame as it went out). */
function responseBytes(port: number, headers: Record<string, string>, body: Buffer): Promise<{ bytes: number; status: string }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on("error", reject);
    const req = session.request({ ":method": "POST", ":path": "/llm.v1.LlmService/Generate", ...headers });
    let bytes = 0;
    let status = "none";
    req.on("data", (c: Buffer) => (bytes += c.byteLength));
    req.on("trailers", (t) => (status = String(t["grpc-status"])));
    req.on("close", () => {
      session.close();
      resolve({ bytes, status });
    });
    req.end(body);
  });
}

const procs = new Procs();
const workDir = mkdtempSync(join(tmpdir(), "llm-bench-compression-"));
process.on("exit", () => procs.killAllNow());

try {
  useH2load(execFileSync("bash", [join(ROOT, "scripts/h2load.sh")], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim().split("\n").at(-1)!);
  const gw = await startGateway(procs, { name: "gateway", workDir, dataDir: join(workDir, "data") });
  const answers = { small: "Say hello to the benchmark.", "3 KiB": "All work and no play makes a dull benchmark. ".repeat(66) };
  const cases = Object.entries(answers).flatMap(([size, prompt]) => {
    const bodyFile = join(workDir, `${size.replace(/\W/g, "")}.bin`);
    const body = grpcFrame(toBinary(pb.GenerateRequestSchema, create(pb.GenerateRequestSchema, { model: "sim/echo", messages: [{ role: pb.Role.USER, content: prompt }] })));
    writeFileSync(bodyFile, body);
    return [undefined, "gzip", "br"].map((accept) => ({ name: `${size} answer, ${accept ?? "no compression"} accepted`, accept, bodyFile, body }));
  });
  const headers = (accept: string | undefined): Record<string, string> => ({
    "content-type": "application/grpc",
    te: "trailers",
    authorization: `Bearer ${gw.apiKey}`,
    ...(accept ? { "grpc-accept-encoding": accept } : {}),
  });

  const results = new Map<string, { cpu: number; rps: number; p50: number; p99: number; errors: number }[]>();
  for (let round = 1; round <= ROUNDS; round++) {
    for (const c of cases) {
      const url = `http://127.0.0.1:${gw.port}/llm.v1.LlmService/Generate`;
      await h2load({ url, bodyFile: c.bodyFile, headers: headers(c.accept), clients: 8, requests: 500, cpu: LOAD_CPU, workDir, timeoutMs: 60_000 });
      const before = cpuMicros(gw.child.pid);
      const r = await h2load({ url, bodyFile: c.bodyFile, headers: headers(c.accept), clients: 8, requests: REQUESTS, cpu: LOAD_CPU, workDir, timeoutMs: 120_000 });
      const cpu = (cpuMicros(gw.child.pid) - before) / r.done;
      const list = results.get(c.name) ?? [];
      list.push({ cpu, rps: r.rps, p50: r.latency.p50, p99: r.latency.p99, errors: r.httpErrors });
      results.set(c.name, list);
      log(`round ${round} ${c.name}: ${fmt(cpu, 0)} µs/call, ${fmt(r.rps, 0)} RPS`);
    }
  }

  const rows: string[][] = [];
  for (const c of cases) {
    const runs = [...(results.get(c.name) ?? [])].sort((a, b) => a.cpu - b.cpu);
    const median = runs[Math.floor(runs.length / 2)]!;
    const one = await responseBytes(gw.port, headers(c.accept), c.body);
    rows.push([c.name, fmt(median.cpu, 0), runs.map((x) => fmt(x.cpu, 0)).join(" / "), fmt(median.rps, 0), fmt(median.p50), fmt(median.p99), String(one.bytes), String(median.errors + (one.status === "0" ? 0 : 1))]);
  }
  console.log(`\nResponse compression on the direct path: gRPC unary Generate (sim/echo), h2load c=8, ${REQUESTS} requests per round, ${ROUNDS} rounds\n`);
  console.log(table(["case", "CPU µs/call", "rounds", "RPS", "p50 ms", "p99 ms", "bytes", "errors"], rows));
} finally {
  await procs.stopAll();
  rmSync(workDir, { recursive: true, force: true });
}
