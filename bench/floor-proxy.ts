/**
 * The Node floors on the OpenAI-style HTTP/1.1 API (what Portkey and LiteLLM serve): a node:http
 * server that answers POST /v1/chat/completions with one upstream call to the simulator.
 *   node: the Node floor. node:http in, undici `Pool.request` out, the upstream's status,
 *         content-type, content-length and body passed back as they come; nothing else.
 *   sdk:  the SDK floor. The request body parsed, one `chat.completions.create` through the
 *         `openai` SDK over the gateway's own fetch (src/providers/http.ts), the completion
 *         serialized back; nothing else.
 * Usage: node bench/floor-proxy.ts PORT UPSTREAM_PORT node|sdk
 */
import http from "node:http";
import { OpenAI } from "openai";
import { Pool } from "undici";

// The built module (npm run bench builds dist/ first), typed by its source: dist has no declarations.
const built: string = "../dist/src/providers/http.js";
const { createHttpFetch } = (await import(built)) as typeof import("../src/providers/http.ts");

const [port, upstreamPort] = [Number(process.argv[2]), Number(process.argv[3])];
const mode = process.argv[4];
if (!Number.isInteger(port) || !Number.isInteger(upstreamPort) || (mode !== "node" && mode !== "sdk")) {
  process.stderr.write("usage: node bench/floor-proxy.ts PORT UPSTREAM_PORT node|sdk\n");
  process.exit(2);
}

const origin = `http://127.0.0.1:${upstreamPort}`;
const pool = new Pool(origin, { connections: 256, keepAliveTimeout: 4000 });
const client = new OpenAI({
  apiKey: "sk-bench",
  baseURL: `${origin}/v1`,
  organization: null,
  project: null,
  webhookSecret: null,
  adminAPIKey: null,
  maxRetries: 0,
  logLevel: "off",
  fetch: createHttpFetch({ maxSocketsPerOrigin: 256 }).fetch,
});

function fail(res: http.ServerResponse, err: unknown): void {
  if (res.headersSent) res.destroy();
  else res.writeHead(502, { "content-type": "text/plain" }).end(String(err));
}

async function viaUndici(req: http.IncomingMessage, body: Buffer, res: http.ServerResponse): Promise<void> {
  const up = await pool.request({
    path: req.url ?? "/",
    method: "POST",
    headers: { "content-type": req.headers["content-type"] ?? "application/json", authorization: req.headers.authorization ?? "" },
    body,
  });
  const headers: Record<string, string> = {};
  for (const name of ["content-type", "content-length"]) {
    const v = up.headers[name];
    if (typeof v === "string") headers[name] = v;
  }
  res.writeHead(up.statusCode, headers);
  up.body.on("data", (chunk: Buffer) => res.write(chunk));
  up.body.once("end", () => res.end());
  up.body.once("error", (err) => fail(res, err));
}

async function viaSdk(body: Buffer, res: http.ServerResponse): Promise<void> {
  const params = JSON.parse(body.toString("utf8")) as OpenAI.ChatCompletionCreateParamsNonStreaming;
  const completion = await client.chat.completions.create({ ...params, stream: false });
  const out = JSON.stringify(completion);
  res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(out) }).end(out);
}

const server = http.createServer((req, res) => {
  const parts: Buffer[] = [];
  req.on("data", (d: Buffer) => parts.push(d));
  req.on("end", () => {
    const body = Buffer.concat(parts);
    (mode === "sdk" ? viaSdk(body, res) : viaUndici(req, body, res)).catch((err: unknown) => fail(res, err));
  });
});
server.keepAliveTimeout = 60_000;
server.listen(port, "127.0.0.1", () => process.stderr.write(`floor (${mode}) HTTP/1.1 server listening on 127.0.0.1:${port}\n`));
process.on("SIGTERM", () => process.exit(0));
