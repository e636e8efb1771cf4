/**
 * `npm run bench:gc`: how much of what one upstream call allocates survives V8's young-generation
 * collections, side by side for the ways a response body can be read. Survivors are copied, and
 * then promoted to the old generation, where only a full GC frees them: what survives sets the
 * length of the scavenge pauses, and those pauses land on whichever calls are in flight.
 *
 * For each mode a child process (pinned like the gateway) makes N sequential non-streamed chat
 * completions to the simulator after a warm-up, under `--trace-gc-nvp`; the table sums V8's own
 * per-scavenge figures (allocated, new_space_survived, promoted, pause) over the measured calls.
 * The child runs this same file with `child <mode> <simulator port> <N>`.
 */
import http from "node:http";
import { join } from "node:path";
import { Readable } from "node:stream";
import OpenAI from "openai";
import { freePort, log, portOpen, Procs, waitUntil, pinTo } from "./procs.ts";
import { fmt, table } from "./stats.ts";
import { GATEWAY_CPU, LOAD_CPU, NODE, ROOT } from "./setup.ts";
import { spawn } from "node:child_process";

const MODES = {
  "node:http": "node:http request, body read as a Node stream (no web stream, no Response)",
  "Readable.toWeb": "node:http, body through Readable.toWeb into a Response, response.json() (the gateway's fetch before)",
  webStream: "the gateway's pooled fetch (src/providers/http.ts), response.json()",
  "openai SDK, toWeb": "chat.completions.create through the openai SDK on a node:http fetch whose bodies go through Readable.toWeb (the gateway before)",
  "openai SDK": "chat.completions.create through the openai SDK on the gateway's pooled fetch, as the adapter calls it",
} as const;
type Mode = keyof typeof MODES;

const MARK_START = "GC-SURVIVAL-START";
const MARK_END = "GC-SURVIVAL-END";

async function child(mode: Mode, port: number, n: number): Promise<void> {
  // Imported here so the parent does not load the service's code.
  const { createHttpFetch } = (await import(join(ROOT, "dist/src/providers/http.js"))) as typeof import("../src/providers/http.ts");
  const url = `http://127.0.0.1:${port}/v1/chat/completions`;
  const params = { model: "gpt-4o-mini", messages: [{ role: "user" as const, content: "Say hello to the benchmark" }], max_tokens: 16 };
  const body = JSON.stringify(params);
  const headers = { "content-type": "application/json", authorization: "Bearer sk-bench" };
  const agent = new http.Agent({ keepAlive: true });
  const pool = createHttpFetch();
  const client = new OpenAI({ apiKey: "sk-bench", baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 0, logLevel: "off", fetch: pool.fetch, organization: null, project: null });
  const respond = (): Promise<http.IncomingMessage> =>
    new Promise((resolve, reject) => {
      const req = http.request(url, { method: "POST", agent, headers: { ...headers, "content-length": Buffer.byteLength(body) } }, resolve);
      req.on("error", reject);
      req.end(body);
    });
  // The gateway's fetch as it was: node:http, the body adapted by Readable.toWeb.
  const toWebFetch = (input: string | URL | Request, init?: RequestInit): Promise<Response> =>
    new Promise((resolve, reject) => {
      const requestBody = String(init?.body ?? "");
      const h: Record<string, string> = { "content-length": String(Buffer.byteLength(requestBody)) };
      new Headers(init?.headers).forEach((v, k) => (h[k] = v));
      const req = http.request(String(input), { method: init?.method ?? "GET", agent, headers: h }, (res) => {
        const responseHeaders = new Headers();
        for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) responseHeaders.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
        resolve(new Response(Readable.toWeb(res) as ReadableStream<Uint8Array>, { status: res.statusCode ?? 200, headers: responseHeaders }));
      });
      req.on("error", reject);
      req.end(requestBody);
    });
  const toWebClient = new OpenAI({ apiKey: "sk-bench", baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 0, logLevel: "off", fetch: toWebFetch, organization: null, project: null });
  const call: Record<Mode, () => Promise<unknown>> = {
    "node:http": async () => {
      const chunks: Buffer[] = [];
      for await (const c of await respond()) chunks.push(c as Buffer);
      return JSON.parse(Buffer.concat(chunks).toString());
    },
    "Readable.toWeb": async () => {
      const res = await respond();
      return new Response(Readable.toWeb(res) as ReadableStream<Uint8Array>, { status: res.statusCode ?? 200 }).json();
    },
    webStream: async () => (await pool.fetch(url, { method: "POST", headers, body })).json(),
    "openai SDK, toWeb": () => toWebClient.chat.completions.create(params, { timeout: 60_000, maxRetries: 0 }),
    "openai SDK": () => client.chat.completions.create(params, { timeout: 60_000, maxRetries: 0 }),
  };
  const once = call[mode];
  for (let i = 0; i < 300; i++) await once();
  console.log(MARK_START);
  for (let i = 0; i < n; i++) await once();
  console.log(MARK_END);
  agent.destroy();
  pool.close();
}

interface Survival {
  scavenges: number;
  pauseMs: number;
  allocated: number;
  survived: number;
  promoted: number;
}

/** Sums --trace-gc-nvp's scavenge lines between the markers. */
function survival(stdout: string): Survival {
  const s: Survival = { scavenges: 0, pauseMs: 0, allocated: 0, survived: 0, promoted: 0 };
  const from = stdout.indexOf(MARK_START);
  const to = stdout.indexOf(MARK_END);
  if (from < 0 || to < 0) throw new Error("the child did not finish its calls");
  for (const line of stdout.slice(from, to).split("\n")) {
    if (!line.includes(" gc=s ")) continue;
    const field = (name: string) => Number(new RegExp(` ${name}=([\\d.]+)`).exec(line)?.[1] ?? 0);
    s.scavenges++;
    s.pauseMs += field("pause");
    s.allocated += field("allocated");
    s.survived += field("new_space_survived");
    s.promoted += field("promoted");
  }
  return s;
}

function runChild(mode: Mode, port: number, n: number): Promise<string> {
  const argv = [...pinTo(GATEWAY_CPU), NODE, "--trace-gc-nvp", join(ROOT, "bench/gc-survival.ts"), "child", mode, String(port), String(n)];
  return new Promise((resolve, reject) => {
    const p = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    p.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    p.on("error", reject);
    p.on("exit", (code) => (code === 0 ? resolve(out) : reject(new Error(`${mode}: the child exited with ${code}`))));
  });
}

async function main(): Promise<void> {
  const n = Number(process.env.BENCH_GC_CALLS ?? 3000);
  const procs = new Procs();
  try {
    const port = await freePort();
    const sim = procs.start("simulator", NODE, [join(ROOT, "dist/src/simulator/main.js"), "--port", String(port), "--output-tokens", "16"], { cpu: LOAD_CPU });
    await waitUntil(`simulator on port ${port}`, 30_000, () => !sim.exited && portOpen(port));
    const rows: string[][] = [];
    for (const mode of Object.keys(MODES) as Mode[]) {
      log(`${mode}: ${n} calls`);
      const s = survival(await runChild(mode, port, n));
      const kib = (bytes: number) => fmt(bytes / n / 1024, 1);
      rows.push([mode, String(s.scavenges), fmt(s.pauseMs, 0), kib(s.allocated), kib(s.survived), kib(s.promoted)]);
    }
    console.log(`young-generation survival per upstream call (${n} sequential calls after 300 warm-up, --trace-gc-nvp, Node ${process.version})`);
    console.log(table(["mode", "scavenges", "pause ms (sum)", "allocated KiB/call", "survived KiB/call", "promoted KiB/call"], rows));
    for (const [mode, what] of Object.entries(MODES)) console.log(`  ${mode}: ${what}`);
  } finally {
    await procs.stopAll();
  }
}

if (process.argv[2] === "child") await child(process.argv[3] as Mode, Number(process.argv[4]), Number(process.argv[5]));
else await main();
