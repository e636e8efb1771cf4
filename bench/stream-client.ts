/**
 * Many concurrent streams at once, timed per message: StreamGenerate over gRPC (node:http2,
 * a few sessions, many streams each) and over Connect with JSON on HTTP/1.1, and OpenAI chat
 * completions over HTTP/1.1 SSE (one keep-alive socket per stream). Each stream records when it started, when each token arrived
 * and how it ended; the caller turns that into TTFT and inter-token gaps.
 */
import http from "node:http";
import http2 from "node:http2";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { grpcFrame, pb, takeEnvelopes, takeGrpcFrames } from "./proto.ts";

export interface StreamTrace {
  startMs: number;
  /** Arrival time of each token (gRPC: each delta event; SSE: each chunk with content). */
  tokenMs: number[];
  /** Tokens the server says it produced (gRPC completed.usage.outputTokens), if it said. */
  reportedTokens?: number;
  ok: boolean;
  error?: string;
}

export interface StreamRun {
  traces: StreamTrace[];
  /** Wall time from the first start to the last end, ms. */
  wallMs: number;
}

export interface StreamSpec {
  count: number;
  /** Hard limit for the whole run; unfinished streams are cut and count as errors. */
  timeoutMs: number;
  /** Called once, when every stream has its first token or `timeoutMs / 2` has passed. */
  onAllOpen?: () => void;
}

class Tracker {
  readonly traces: StreamTrace[] = [];
  private firstTokens = 0;
  private pending: number;
  private fired = false;
  private readonly ended = new WeakSet<StreamTrace>();
  private resolveDone!: () => void;
  readonly done = new Promise<void>((r) => (this.resolveDone = r));

  private readonly spec: StreamSpec;

  constructor(spec: StreamSpec) {
    this.spec = spec;
    this.pending = spec.count;
    setTimeout(() => this.fireOpen(), spec.timeoutMs / 2).unref();
  }

  add(): StreamTrace {
    const t: StreamTrace = { startMs: performance.now(), tokenMs: [], ok: false };
    this.traces.push(t);
    return t;
  }

  token(t: StreamTrace): void {
    t.tokenMs.push(performance.now());
    if (t.tokenMs.length === 1 && ++this.firstTokens === this.spec.count) this.fireOpen();
  }

  finish(t: StreamTrace, ok: boolean, error?: string): void {
    if (this.ended.has(t)) return;
    this.ended.add(t);
    t.ok = ok;
    if (error !== undefined) t.error = error;
    if (--this.pending === 0) {
      this.fireOpen();
      this.resolveDone();
    }
  }

  private fireOpen(): void {
    if (this.fired) return;
    this.fired = true;
    this.spec.onAllOpen?.();
  }
}

async function withTimeout(tracker: Tracker, timeoutMs: number, cut: () => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)));
  await Promise.race([tracker.done, timedOut]);
  clearTimeout(timer);
  cut();
}

function wall(traces: StreamTrace[]): number {
  const start = Math.min(...traces.map((t) => t.startMs));
  const end = Math.max(...traces.map((t) => t.tokenMs.at(-1) ?? t.startMs));
  return end - start;
}

export interface GrpcStreamSpec extends StreamSpec {
  port: number;
  apiKey: string;
  model: string;
  maxOutputTokens: number;
  /** Streams per HTTP/2 session. */
  streamsPerSession: number;
  /** Caller metadata on each request (e.g. the sim provider's `sim-inter-token-ms`). */
  metadata?: Record<string, string>;
  /** The user message (default "Stream to the benchmark."). */
  prompt?: string;
}

/** `count` concurrent StreamGenerate calls over ceil(count / streamsPerSession) h2c sessions. */
export async function grpcStreams(spec: GrpcStreamSpec): Promise<StreamRun> {
  const body = grpcFrame(
    toBinary(
      pb.StreamGenerateRequestSchema,
      create(pb.StreamGenerateRequestSchema, {
        model: spec.model,
        messages: [{ role: pb.Role.USER, content: spec.prompt ?? "Stream to the benchmark." }],
        maxOutputTokens: spec.maxOutputTokens,
        metadata: spec.metadata ?? {},
      }),
    ),
  );
  const tracker = new Tracker(spec);
  const sessionCount = Math.ceil(spec.count / spec.streamsPerSession);
  const sessions: http2.ClientHttp2Session[] = [];
  for (let i = 0; i < sessionCount; i++) {
    const s = http2.connect(`http://127.0.0.1:${spec.port}`, { peerMaxConcurrentStreams: spec.streamsPerSession });
    s.on("error", () => {});
    sessions.push(s);
  }
  await Promise.all(sessions.map((s) => new Promise<void>((r) => (s.connecting ? s.once("connect", () => r()) : r()))));

  for (let i = 0; i < spec.count; i++) {
    const session = sessions[i % sessionCount]!;
    const trace = tracker.add();
    let buf: Buffer = Buffer.alloc(0);
    let grpcStatus: string | undefined;
    let completed = false;
    const req = session.request({
      ":method": "POST",
      ":path": "/llm.v1.LlmService/StreamGenerate",
      "content-type": "application/grpc",
      te: "trailers",
      authorization: `Bearer ${spec.apiKey}`,
      "grpc-timeout": `${spec.timeoutMs}m`,
    });
    req.on("response", (headers) => {
      const s = headers["grpc-status"];
      if (s !== undefined) grpcStatus = String(s);
    });
    req.on("data", (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const { messages, rest } = takeGrpcFrames(buf);
      buf = rest;
      for (const m of messages) {
        const ev = fromBinary(pb.StreamGenerateResponseSchema, m).event;
        if (ev.case === "delta") tracker.token(trace);
        else if (ev.case === "completed") {
          completed = true;
          trace.reportedTokens = Number(ev.value.usage?.outputTokens ?? 0n);
        }
      }
    });
    req.on("trailers", (trailers) => {
      const s = trailers["grpc-status"];
      if (s !== undefined) grpcStatus = String(s);
    });
    req.on("error", (err: Error) => tracker.finish(trace, false, err.message));
    req.on("close", () => {
      const ok = grpcStatus === "0" && completed;
      tracker.finish(trace, ok, ok ? undefined : `grpc-status ${grpcStatus ?? "none"}${completed ? "" : ", no completed event"}`);
    });
    req.end(body);
  }
  await withTimeout(tracker, spec.timeoutMs, () => {
    for (const s of sessions) s.destroy();
  });
  for (const t of tracker.traces) tracker.finish(t, false, "cut by the benchmark's timeout");
  return { traces: tracker.traces, wallMs: wall(tracker.traces) };
}

export interface SseStreamSpec extends StreamSpec {
  port: number;
  model: string;
  maxTokens: number;
  /** Default /v1/chat/completions. */
  path?: string;
  /** Added to every request (a peer's routing headers). */
  headers?: Record<string, string>;
}

/** `count` concurrent streamed chat completions (SSE) over HTTP/1.1, one socket each. */
export async function sseStreams(spec: SseStreamSpec): Promise<StreamRun> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: spec.count + 10 });
  const body = JSON.stringify({
    model: spec.model,
    messages: [{ role: "user", content: "Stream to the benchmark." }],
    max_tokens: spec.maxTokens,
    stream: true,
  });
  const tracker = new Tracker(spec);
  const requests: http.ClientRequest[] = [];
  for (let i = 0; i < spec.count; i++) {
    const trace = tracker.add();
    const req = http.request(
      {
        host: "127.0.0.1",
        port: spec.port,
        method: "POST",
        path: spec.path ?? "/v1/chat/completions",
        agent,
        headers: { "content-type": "application/json", authorization: "Bearer sk-bench", ...spec.headers, "content-length": Buffer.byteLength(body) },
      },
      (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          res.on("end", () => tracker.finish(trace, false, `HTTP ${res.statusCode}`));
          return;
        }
        let pending = "";
        let sawDone = false;
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          pending += chunk;
          let nl: number;
          while ((nl = pending.indexOf("\n")) >= 0) {
            const line = pending.slice(0, nl).trim();
            pending = pending.slice(nl + 1);
            if (!line.startsWith("data:")) continue;
            const data = line.slice(5).trim();
            if (data === "[DONE]") {
              sawDone = true;
              continue;
            }
            const parsed = JSON.parse(data) as { choices?: { delta?: { content?: string } }[] };
            if (parsed.choices?.[0]?.delta?.content) tracker.token(trace);
          }
        });
        res.on("end", () => tracker.finish(trace, sawDone, sawDone ? undefined : "no [DONE]"));
        res.on("error", (err) => tracker.finish(trace, false, err.message));
      },
    );
    req.on("error", (err) => tracker.finish(trace, false, err.message));
    req.end(body);
    requests.push(req);
  }
  await withTimeout(tracker, spec.timeoutMs, () => {
    for (const r of requests) r.destroy();
    agent.destroy();
  });
  for (const t of tracker.traces) tracker.finish(t, false, "cut by the benchmark's timeout");
  return { traces: tracker.traces, wallMs: wall(tracker.traces) };
}

export interface ConnectStreamSpec extends StreamSpec {
  port: number;
  apiKey: string;
  model: string;
  maxOutputTokens: number;
}

/**
 * `count` concurrent StreamGenerate calls over the Connect protocol with JSON messages
 * (application/connect+json) on HTTP/1.1, one keep-alive socket each: what a browser or a
 * Connect client without HTTP/2 does.
 */
export async function connectStreams(spec: ConnectStreamSpec): Promise<StreamRun> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: spec.count + 10 });
  const message = Buffer.from(
    JSON.stringify({ model: spec.model, messages: [{ role: "ROLE_USER", content: "Stream to the benchmark." }], maxOutputTokens: spec.maxOutputTokens }),
  );
  const body = grpcFrame(message);
  const tracker = new Tracker(spec);
  const requests: http.ClientRequest[] = [];
  for (let i = 0; i < spec.count; i++) {
    const trace = tracker.add();
    const req = http.request(
      {
        host: "127.0.0.1",
        port: spec.port,
        method: "POST",
        path: "/llm.v1.LlmService/StreamGenerate",
        agent,
        headers: {
          "content-type": "application/connect+json",
          "connect-protocol-version": "1",
          "connect-timeout-ms": String(spec.timeoutMs),
          authorization: `Bearer ${spec.apiKey}`,
          "content-length": body.length,
        },
      },
      (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          res.on("end", () => tracker.finish(trace, false, `HTTP ${res.statusCode}`));
          return;
        }
        let buf: Buffer = Buffer.alloc(0);
        let completed = false;
        let endError: string | undefined;
        let ended = false;
        res.on("data", (chunk: Buffer) => {
          buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
          const { envelopes, rest } = takeEnvelopes(buf);
          buf = rest;
          for (const e of envelopes) {
            const parsed = JSON.parse(e.data.toString("utf8")) as {
              delta?: unknown;
              completed?: { usage?: { outputTokens?: string | number } };
              error?: { code?: string };
            };
            if (e.flags & 0x02) {
              ended = true;
              if (parsed.error) endError = parsed.error.code ?? "error";
            } else if (parsed.delta !== undefined) tracker.token(trace);
            else if (parsed.completed !== undefined) {
              completed = true;
              trace.reportedTokens = Number(parsed.completed.usage?.outputTokens ?? 0);
            }
          }
        });
        res.on("end", () => {
          const ok = ended && endError === undefined && completed;
          tracker.finish(trace, ok, ok ? undefined : `connect end-stream ${ended ? (endError ?? "ok") : "missing"}${completed ? "" : ", no completed event"}`);
        });
        res.on("error", (err) => tracker.finish(trace, false, err.message));
      },
    );
    req.on("error", (err) => tracker.finish(trace, false, err.message));
    req.end(body);
    requests.push(req);
  }
  await withTimeout(tracker, spec.timeoutMs, () => {
    for (const r of requests) r.destroy();
    agent.destroy();
  });
  for (const t of tracker.traces) tracker.finish(t, false, "cut by the benchmark's timeout");
  return { traces: tracker.traces, wallMs: wall(tracker.traces) };
}
