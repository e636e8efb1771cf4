/**
 * Log lines of real calls, captured from the logger's stream: JSON, one access line per call with
 * the request id and the trace id, warnings for retries and fallbacks tied to the same call, and
 * never an API key or prompt text. Runs as deployed without an OTLP endpoint (ids, no recorded
 * spans), with METRICS_PORT set.
 */
import { execFileSync } from "node:child_process";
import { Writable } from "node:stream";
import { create } from "@bufbuild/protobuf";
import { ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import winston from "winston";
import { GenerateRequestSchema, LlmService, Role } from "../../gen/ts/llm/v1/llm_service_pb.js";
import { createLogger } from "../../src/telemetry/logger.js";
import { bearer } from "../helpers/clients.js";
import { callerContext, startObservedServer, withHeaders, type ObservedServer } from "./helpers.js";

const PROMPT_CANARY = "PROMPT-CANARY-7f3a do not log me";
const UNKNOWN_KEY_CANARY = "llm_canary_S3CRETcanaryKEYvalue000000";

const CATALOGUE = `routing:
  maxAttempts: 2
  backoffBaseMs: 1
  backoffCapMs: 2
models:
  - id: m
    contextWindow: 10000
    maxOutputTokens: 256
    deployments: [{ provider: sim, model: echo }]
  - id: m2
    contextWindow: 10000
    maxOutputTokens: 256
    deployments: [{ provider: sim, model: lorem }]
`;

interface Line {
  time: string;
  level: string;
  message: string;
  [field: string]: unknown;
}

let server: ObservedServer;
let lines: Line[];
const traced = callerContext();
let refusedRequestId: string | null = null;

function client(key: string, headers: Record<string, string> = {}) {
  return createClient(
    LlmService,
    createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1", interceptors: [bearer(key), withHeaders(headers)] }),
  );
}

beforeAll(async () => {
  server = await startObservedServer({ METRICS_PORT: "0", LOG_LEVEL: "debug" }, { catalogue: CATALOGUE, logLevel: "debug" });
  const ask = (extra: Record<string, unknown> = {}) =>
    create(GenerateRequestSchema, { model: "m", messages: [{ role: Role.USER, content: PROMPT_CANARY }], ...extra });

  await client(server.key, { traceparent: traced.traceparent, "x-request-id": "req-logs-traced" }).generate(ask());
  await client(server.key, { "x-request-id": "req-logs-plain" }).generate(ask());
  await expect(
    client(server.key, { "x-request-id": "req-logs-fails" }).generate(ask({ fallbackModels: ["m2"], metadata: { "sim-fail": "PROVIDER_UNAVAILABLE" } })),
  ).rejects.toThrow();
  try {
    await client(UNKNOWN_KEY_CANARY, { "x-request-id": "req-logs-refused" }).generate(ask());
  } catch (err) {
    refusedRequestId = ConnectError.from(err).metadata.get("x-request-id");
  }
  await server.app.ledger.flush();
  lines = server.logLines.map((l) => JSON.parse(l) as Line);
}, 60_000);

afterAll(async () => {
  await server?.close();
});

/** The access line of the call that sent this x-request-id (logged as clientRequestId, beside the server's requestId). */
const callLine = (clientRequestId: string) => lines.find((l) => l.message === "call" && l.clientRequestId === clientRequestId);

describe("log lines", () => {
  it("are JSON objects with time, level and message", () => {
    expect(server.logLines.length).toBeGreaterThan(5);
    for (const line of lines) {
      expect(Date.parse(line.time)).not.toBeNaN();
      expect(["error", "warn", "info", "debug"]).toContain(line.level);
      expect(typeof line.message).toBe("string");
    }
  });

  it("write one access line per call with the request id, the caller's trace id and the call's fields", () => {
    expect(lines.filter((l) => l.message === "call" && l.clientRequestId === "req-logs-traced")).toHaveLength(1);
    expect(callLine("req-logs-traced")).toMatchObject({
      level: "info",
      requestId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      clientRequestId: "req-logs-traced",
      traceId: traced.traceId,
      spanId: expect.stringMatching(/^[0-9a-f]{16}$/),
      tenant: "acme",
      keyId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      model: "m",
      provider: "sim",
      status: "ok",
      reason: null,
      attempts: 1,
      latencyMs: expect.any(Number),
      inputTokens: expect.any(Number),
      outputTokens: expect.any(Number),
    });
    expect(callLine("req-logs-traced")?.spanId).not.toBe(traced.spanId);
  });

  it("give a call without a traceparent a trace id of its own", () => {
    const line = callLine("req-logs-plain");
    expect(line?.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(line?.traceId).not.toBe(traced.traceId);
  });

  it("tie retry and fallback warnings to the call that had them", () => {
    const failed = callLine("req-logs-fails");
    expect(failed).toMatchObject({ status: "failed", reason: "PROVIDER_UNAVAILABLE", attempts: 4 });
    const warnings = lines.filter((l) => l.level === "warn" && l.clientRequestId === "req-logs-fails");
    expect(warnings.map((w) => w.message)).toEqual(expect.arrayContaining(["retrying upstream call", "falling back to the next deployment"]));
    for (const w of warnings) {
      expect(w.traceId).toBe(failed?.traceId);
      expect(w.requestId).toBe(failed?.requestId);
    }
  });

  it("log a refused key with both request ids, and the refusal carries the server's as x-request-id", () => {
    expect(refusedRequestId).toMatch(/^[0-9a-f-]{36}$/);
    const warning = lines.find((l) => l.message.startsWith("rejected an unknown") && l.clientRequestId === "req-logs-refused");
    expect(warning?.requestId).toBe(refusedRequestId);
    expect(warning?.level).toBe("warn");
    expect(warning?.traceId).toMatch(/^[0-9a-f]{32}$/);
  });

  it("never contain an API key or the prompt", () => {
    const all = server.logLines.join("\n");
    expect(all).not.toContain(server.key);
    expect(all).not.toContain(UNKNOWN_KEY_CANARY);
    expect(all).not.toContain("S3CRETcanary");
    expect(all).not.toContain("PROMPT-CANARY");
  });
});

describe("METRICS_PORT", () => {
  it("serves /metrics on its own port, and the main port no longer does", async () => {
    expect(server.app.metricsPort).toEqual(expect.any(Number));
    const own = await fetch(`http://127.0.0.1:${server.app.metricsPort}/metrics`);
    expect(own.status).toBe(200);
    expect(await own.text()).toMatch(/^rpc_server_call_duration_seconds_count\{.*rpc_method="llm\.v1\.LlmService\/Generate".*\} \d+$/m);
    const main = await fetch(`${server.baseUrl}/metrics`);
    expect(main.status).not.toBe(200);
  });
});

describe("createLogger", () => {
  it("honours the level and masks fields that could only hold secrets or prompt text", () => {
    const out: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _e, cb) {
        out.push(chunk.toString());
        cb();
      },
    });
    const logger = createLogger("warn", { stream, context: () => ({ requestId: "r-1", traceId: "t".repeat(32) }) });
    logger.info("not at warn level");
    logger.warn("careless", { authorization: "Bearer sk-live-123", prompt: "tell me secrets", requestId: "explicit" });
    const written = out.join("").trim().split("\n").map((l) => JSON.parse(l) as Line);
    expect(written).toHaveLength(1);
    expect(written[0]).toMatchObject({ message: "careless", authorization: "[redacted]", prompt: "[redacted]", requestId: "explicit", traceId: "t".repeat(32) });
  });
});

describe("createLogger, through winston", () => {
  it("writes, field for field, the line winston's stock timestamp + json format writes", () => {
    const ours: string[] = [];
    const stock: string[] = [];
    const sink = (into: string[]) =>
      new Writable({
        write(chunk: Buffer, _e, cb) {
          into.push(...chunk.toString().trim().split("\n"));
          cb();
        },
      });
    const logger = createLogger("debug", { stream: sink(ours), context: () => ({ requestId: "r-ctx", traceId: "t".repeat(32) }) });
    const reference = winston.createLogger({
      level: "debug",
      format: winston.format.combine(winston.format.timestamp({ alias: "time" }), winston.format.json()),
      transports: [new winston.transports.Stream({ stream: sink(stock) })],
    });
    const lines: [string, Record<string, unknown>][] = [
      ["call", { requestId: "r-1", latencyMs: 1.5, cached: false, reason: null, zeta: "z", alpha: "a", skipped: undefined }],
      ["nested", { nested: { b: 2, a: [1, { d: 4, c: 3 }] }, list: ["x", "y"] }],
      ["with a message field", { message: "appended", n: 0 }],
      ["no fields", {}],
      ["awkward values", { quoted: 'say "hi"\\ \n\t\u0001 é ✓', nan: Number.NaN, inf: Infinity, negZero: -0, big: 1e21, small: 1e-7 }],
    ];
    for (const [message, fields] of lines) {
      logger.debug(message, fields);
      // The ids the context gives, as winston would have them from a format adding them.
      reference.debug(message, { requestId: "r-ctx", traceId: "t".repeat(32), ...fields });
    }
    // Byte for byte (escapes, numbers, key order), but for the time stamps.
    const withoutStamp = (line: string) => {
      expect(Date.parse(String((JSON.parse(line) as Line).time))).not.toBeNaN();
      return line.replace(/"timestamp":"[^"]*",?/, "").replace(/"time":"[^"]*",?/, "");
    };
    expect(ours).toHaveLength(lines.length);
    expect(ours.map(withoutStamp)).toEqual(stock.map(withoutStamp));
  });
});

describe("createLogger, buffered", () => {
  const collect = () => {
    const writes: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _e, cb) {
        writes.push(chunk.toString());
        cb();
      },
    });
    return { writes, stream };
  };

  it("writes the lines of one event-loop turn together at its end, in order, as the unbuffered logger writes them", async () => {
    const buffered = collect();
    const direct = collect();
    const fields = [
      { requestId: "r-1", latencyMs: 1.5, cached: false, reason: null, zeta: "z", alpha: "a" },
      { big: 12345678901234567890n, nested: { b: 2, a: [1, { d: 4, c: 3 }] } },
      { message: "appended" },
    ];
    const a = createLogger("info", { stream: buffered.stream, buffered: true });
    const b = createLogger("info", { stream: direct.stream });
    for (const [i, f] of fields.entries()) {
      a.info(`line ${i}`, f);
      b.info(`line ${i}`, f);
    }
    expect(buffered.writes).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(buffered.writes).toHaveLength(1);
    const strip = (l: string) => l.replace(/"time":"[^"]+"/, '"time":"T"');
    expect(buffered.writes[0]!.split("\n").map(strip)).toEqual(direct.writes.join("").split("\n").map(strip));
    const lines = direct.writes.map((l) => l.trim());
    expect(lines[0]).toMatch(/^\{"alpha":"a","cached":false,"latencyMs":1\.5,"level":"info","message":"line 0","reason":null,"requestId":"r-1","time":"[^"]+","zeta":"z"\}$/);
    expect(JSON.parse(lines[1]!)).toMatchObject({ big: "12345678901234567890", nested: { a: [1, { c: 3, d: 4 }], b: 2 } });
    expect(lines[1]).toContain('"nested":{"a":[1,{"c":3,"d":4}],"b":2}');
    expect(JSON.parse(lines[2]!)).toMatchObject({ message: "line 2 appended" });
  });

  it("writes at once when the pending lines pass 64 KiB", () => {
    const { writes, stream } = collect();
    const logger = createLogger("info", { stream, buffered: true });
    const filler = "x".repeat(1000);
    for (let i = 0; i < 70; i++) logger.info("big", { filler, i });
    expect(writes).toHaveLength(1);
    expect(writes[0]!.length).toBeGreaterThanOrEqual(64 * 1024);
  });

  it("loses no line when the process exits right after logging", () => {
    const script = [
      `import { createLogger } from ${JSON.stringify(new URL("../../src/telemetry/logger.ts", import.meta.url).pathname)};`,
      `const logger = createLogger("info");`,
      `for (let i = 0; i < 3; i++) logger.info("before exit", { i });`,
      `process.exit(0);`,
    ].join("\n");
    // tsx's loader: the logger's own imports name .js files that exist as .ts here.
    const root = new URL("../..", import.meta.url).pathname;
    const out = execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { encoding: "utf8", cwd: root });
    const lines = out.trim().split("\n").map((l) => JSON.parse(l) as Line & { i: number });
    expect(lines.map((l) => l.i)).toEqual([0, 1, 2]);
  });
});
