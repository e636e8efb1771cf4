/**
 * `node bench/fetch-cpu.ts`: what sits under the openai SDK, measured. CPU µs per non-streamed chat
 * completion made through the `openai` SDK over different fetch functions, plus the same call
 * without the SDK as a floor, side by side in interleaved rounds.
 *
 * For each round and mode a child process (pinned like the gateway) makes FETCH_WARMUP calls, then
 * FETCH_CALLS calls at concurrency FETCH_CONCURRENCY to the 16-token simulator (on the load CPU),
 * and reports its own utime+stime (process.cpuUsage) over the measured calls divided by their
 * count. The child runs this same file with `child <mode> <simulator port>`.
 * Env: FETCH_CALLS (4000), FETCH_WARMUP (1000), FETCH_ROUNDS (5), FETCH_CONCURRENCY (32),
 * FETCH_MODES (comma-separated subset of the modes).
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { freePort, log, pinTo, portOpen, Procs, waitUntil } from "./procs.ts";
import { GATEWAY_CPU, LOAD_CPU, NODE, ROOT } from "./setup.ts";
import { fmt, table } from "./stats.ts";

const MODES = {
  "no SDK: undici request": "the floor: undici Pool.request and JSON.parse of the body, no SDK, no Response",
  "SDK + global fetch": "the openai SDK with its default fetch (Node's built-in WHATWG fetch)",
  "SDK + http.ts fetch": "the openai SDK over the gateway's fetch (createHttpFetch in src/providers/http.ts)",
  "SDK + undici request": "the openai SDK over a minimal fetch on undici Pool.request (bench/undici-fetch.ts), the body through http.ts's webStream",
  "SDK + undici dispatch": "the openai SDK over a minimal fetch on undici Pool.dispatch (bench/undici-fetch.ts): chunks from undici's handler straight into the web stream",
} as const;
type Mode = keyof typeof MODES;

const CALLS = Number(process.env.FETCH_CALLS ?? 4000);
const WARMUP = Number(process.env.FETCH_WARMUP ?? 1000);
const ROUNDS = Number(process.env.FETCH_ROUNDS ?? 5);
const CONCURRENCY = Number(process.env.FETCH_CONCURRENCY ?? 32);
const RESULT = "FETCH-CPU-RESULT ";

async function child(mode: Mode, port: number): Promise<void> {
  // Imported here so the parent loads none of it.
  const { default: OpenAI } = await import("openai");
  const { Pool } = await import("undici");
  const { createHttpFetch } = (await import(join(ROOT, "dist/src/providers/http.js"))) as typeof import("../src/providers/http.ts");
  const { createUndiciDispatchFetch, createUndiciFetch } = await import("./undici-fetch.ts");
  const baseURL = `http://127.0.0.1:${port}/v1`;
  const params = { model: "gpt-4o-mini", messages: [{ role: "user" as const, content: "Say hello to the benchmark." }], max_tokens: 16 };
  const sdk = (fetch?: typeof globalThis.fetch | ((input: string | URL | Request, init?: RequestInit) => Promise<Response>)): (() => Promise<unknown>) => {
    const client = new OpenAI({ apiKey: "sk-bench", baseURL, maxRetries: 0, logLevel: "off", organization: null, project: null, webhookSecret: null, adminAPIKey: null, ...(fetch ? { fetch } : {}) });
    return () => client.chat.completions.create(params);
  };
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 256, keepAliveTimeout: 4000 });
  const body = JSON.stringify(params);
  const calls: Record<Mode, () => Promise<unknown>> = {
    "no SDK: undici request": async () => {
      const r = await pool.request({ path: "/v1/chat/completions", method: "POST", headers: { "content-type": "application/json", authorization: "Bearer sk-bench" }, body });
      return JSON.parse(await r.body.text());
    },
    "SDK + global fetch": sdk(),
    "SDK + http.ts fetch": sdk(createHttpFetch({ maxSocketsPerOrigin: 256 }).fetch),
    "SDK + undici request": sdk(createUndiciFetch({ connections: 256 }).fetch),
    "SDK + undici dispatch": sdk(createUndiciDispatchFetch({ connections: 256 }).fetch),
  };
  const call = calls[mode];
  const run = async (n: number): Promise<void> => {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next++ < n) await call();
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  };
  await run(WARMUP);
  const t0 = performance.now();
  const before = process.cpuUsage();
  await run(CALLS);
  const used = process.cpuUsage(before);
  const ms = performance.now() - t0;
  process.stdout.write(`${RESULT}${JSON.stringify({ cpuPerCall: (used.user + used.system) / CALLS, rps: (CALLS / ms) * 1000 })}\n`);
  process.exit(0);
}

function runChild(mode: Mode, port: number): Promise<{ cpuPerCall: number; rps: number }> {
  const argv = [...pinTo(GATEWAY_CPU), NODE, join(ROOT, "bench/fetch-cpu.ts"), "child", mode, String(port)];
  return new Promise((resolve, reject) => {
    const p = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    p.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    p.on("error", reject);
    p.on("exit", (code) => {
      const line = out.split("\n").find((l) => l.startsWith(RESULT));
      if (code !== 0 || line === undefined) reject(new Error(`${mode}: the child exited with ${code}`));
      else resolve(JSON.parse(line.slice(RESULT.length)) as { cpuPerCall: number; rps: number });
    });
  });
}

async function main(): Promise<void> {
  const modes = (process.env.FETCH_MODES?.split(",").map((m) => m.trim()) ?? Object.keys(MODES)) as Mode[];
  for (const m of modes) if (!(m in MODES)) throw new Error(`unknown mode ${m}; modes: ${Object.keys(MODES).join(", ")}`);
  const procs = new Procs();
  try {
    const port = await freePort();
    const sim = procs.start("simulator", NODE, [join(ROOT, "dist/src/simulator/main.js"), "--port", String(port), "--output-tokens", "16"], { cpu: LOAD_CPU });
    await waitUntil(`simulator on port ${port}`, 30_000, () => !sim.exited && portOpen(port));
    const results = new Map<Mode, { cpuPerCall: number; rps: number }[]>(modes.map((m) => [m, []]));
    for (let round = 1; round <= ROUNDS; round++) {
      // Each round in a different order, so no mode always follows the same one.
      const order = modes.map((_, i) => modes[(i + round - 1) % modes.length]!);
      for (const mode of order) {
        const r = await runChild(mode, port);
        log(`round ${round}/${ROUNDS} ${mode}: ${fmt(r.cpuPerCall, 0)} µs/call, ${fmt(r.rps, 0)} calls/s`);
        results.get(mode)!.push(r);
      }
    }
    const rows = modes.map((mode) => {
      const runs = results.get(mode)!;
      const cpu = runs.map((r) => r.cpuPerCall).sort((a, b) => a - b);
      const rps = runs.map((r) => r.rps).sort((a, b) => a - b);
      return [mode, fmt(cpu[Math.floor((cpu.length - 1) / 2)], 0), cpu.map((c) => fmt(c, 0)).join(" / "), fmt(rps[Math.floor((rps.length - 1) / 2)], 0)];
    });
    console.log(`CPU per non-streamed chat completion, c=${CONCURRENCY}, ${CALLS} calls after ${WARMUP} warm-up, ${ROUNDS} interleaved rounds, Node ${process.version}`);
    console.log(table(["mode", "CPU µs/call (median)", "rounds (sorted)", "calls/s (median)"], rows));
    for (const [mode, what] of Object.entries(MODES)) if (modes.includes(mode as Mode)) console.log(`  ${mode}: ${what}`);
  } finally {
    await procs.stopAll();
  }
}

if (process.argv[2] === "child") await child(process.argv[3] as Mode, Number(process.argv[4]));
else await main();
