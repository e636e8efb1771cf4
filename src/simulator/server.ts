/**
 * The upstream simulator: a loopback HTTP/1.1 server (node:http, nothing else) that speaks
 * OpenAI, Anthropic and Ollama chat on the wire, with latency, streaming pace, error and
 * fault injection scripted per run or per request (`x-sim-*` headers). Routing, timing and
 * faults live here; each vendor's bytes live in its dialect.
 */
import { EventEmitter } from "node:events";
import http from "node:http";
import type { Socket } from "node:net";
import { AbortLog } from "./abort-log.js";
import { FailCounters, KNOB_HEADERS, KnobError, knobsFromHeaders, resolveKnobs, type HeaderKnobs, type ResolvedKnobs } from "./knobs.js";
import { DIALECTS } from "./dialects.js";
import { EMBED_ROUTES, embedAnswer, type EmbedWire } from "./embeddings.js";
import { generate } from "./text.js";
import type { ChatRequest, Dialect, Exchange } from "./dialect.js";
import type {
  AbortFilter,
  ClientAbort,
  SimulatorEvents,
  SimulatorKnobs,
  SimulatorOptions,
  SimulatorStats,
} from "./types.js";

const CHAT_ROUTES = new Map<string, Dialect>(DIALECTS.map((d) => [d.chatPath, d]));
/** The dialect whose chat requests go to `path`. */
const chatDialect = (path: string): Dialect | undefined => CHAT_ROUTES.get(path) ?? DIALECTS.find((d) => d.isChatPath?.(path) === true);
const GET_ROUTES = new Set(["/", ...DIALECTS.flatMap((d) => Object.keys(d.get))]);

const DEFAULT_MODELS = DIALECTS.map((d) => d.defaultModel);
const ROOT_TEXT = `llm-service upstream simulator: POST ${DIALECTS.map((d) => d.chatPath).join(", ")}\n`;
const FALLBACK_DIALECT = DIALECTS[0];
const REQUEST_ID_PREFIX = "req_sim";

const MESSAGES: Record<number, string> = {
  400: "Bad request (simulated).",
  401: "Invalid API key (simulated).",
  403: "Permission denied (simulated).",
  404: "Not found (simulated).",
  429: "Rate limit reached (simulated).",
  500: "Internal server error (simulated).",
  502: "Bad gateway (simulated).",
  503: "Service unavailable (simulated).",
  504: "Gateway timeout (simulated).",
  529: "Overloaded (simulated).",
};

/** The dialect a request that is not a chat POST belongs to: by path prefix, else by a header it carries, else the first. */
function claimant(path: string, headers: http.IncomingHttpHeaders): Dialect {
  return (
    DIALECTS.find((d) => d.claims?.pathPrefix !== undefined && path.startsWith(d.claims.pathPrefix)) ??
    DIALECTS.find((d) => d.claims?.header !== undefined && headers[d.claims.header] !== undefined) ??
    FALLBACK_DIALECT
  );
}

function messageFor(status: number): string {
  return MESSAGES[status] ?? `Error ${status} (simulated).`;
}

/** One request's life: the timer it waits on and what the abort record needs. */
interface Pending {
  path: string;
  tag: string | undefined;
  startedAt: number;
  timer: NodeJS.Timeout | undefined;
  /** The simulator itself dropped the connection (reset, cut): not a client abort. */
  selfDestroyed: boolean;
  stalled: boolean;
  tokensSent: number;
}

function emptyStats(): SimulatorStats {
  return { requests: {}, statuses: {}, clientAborts: 0, injected: 0, inFlight: 0 };
}

export class Simulator extends EventEmitter<SimulatorEvents> {
  readonly stats: SimulatorStats = emptyStats();
  #url = "";
  #port = 0;
  readonly #server: http.Server;
  readonly #sockets = new Set<Socket>();
  readonly #opts: SimulatorOptions;
  readonly #run: SimulatorKnobs;
  readonly #models: readonly string[];
  readonly #maxDelayMs: number;
  readonly #maxStallMs: number;
  readonly #maxBodyBytes: number;
  readonly #failCounters: FailCounters;
  readonly #aborts = new AbortLog();
  #scriptIndex = 0;
  #seq = 0;
  #closing = false;

  private constructor(opts: SimulatorOptions) {
    super();
    this.#opts = opts;
    this.#run = opts;
    this.#models = opts.models ?? DEFAULT_MODELS;
    this.#maxDelayMs = opts.maxDelayMs ?? 60_000;
    this.#maxStallMs = opts.maxStallMs ?? 300_000;
    this.#maxBodyBytes = opts.maxBodyBytes ?? 16 * 1024 * 1024;
    this.#failCounters = new FailCounters(opts.maxFailKeys ?? 10_000);
    this.#server = http.createServer({ noDelay: true }, (req, res) => this.#onRequest(req, res));
    this.#server.on("connection", (socket: Socket) => {
      this.#sockets.add(socket);
      socket.once("close", () => this.#sockets.delete(socket));
    });
  }

  /** @internal use startSimulator(). */
  static async listen(opts: SimulatorOptions): Promise<Simulator> {
    const sim = new Simulator(opts);
    const host = opts.host ?? "127.0.0.1";
    await new Promise<void>((resolve, reject) => {
      sim.#server.once("error", reject);
      sim.#server.listen(opts.port ?? 0, host, () => {
        sim.#server.off("error", reject);
        resolve();
      });
    });
    const address = sim.#server.address();
    if (address === null || typeof address === "string") throw new Error("simulator: no TCP address");
    sim.#port = address.port;
    sim.#url = `http://${address.family === "IPv6" ? `[${address.address}]` : address.address}:${address.port}`;
    return sim;
  }

  /** http://127.0.0.1:PORT — no trailing slash. */
  get url(): string {
    return this.#url;
  }

  get port(): number {
    return this.#port;
  }

  /**
   * Resolves with a client abort matching the filter: one already recorded and not yet
   * claimed by an earlier call, else the next one. Rejects after `timeoutMs` (default 5 s).
   */
  waitForAbort(filter: AbortFilter = {}): Promise<ClientAbort> {
    return this.#aborts.wait(filter);
  }

  /** Zeroes the counters, forgets unclaimed aborts, fail-key counters and the script position. */
  resetStats(): void {
    const inFlight = this.stats.inFlight;
    Object.assign(this.stats, emptyStats(), { inFlight });
    this.#aborts.clear();
    this.#failCounters.clear();
    this.#scriptIndex = 0;
  }

  /** Stops listening and destroys every open connection, so nothing hangs. */
  close(): Promise<void> {
    this.#closing = true;
    this.#aborts.close();
    return new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      for (const socket of this.#sockets) socket.destroy();
      this.#server.closeAllConnections();
    });
  }

  // ---- routing ----

  #onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const raw = req.url ?? "/";
    const q = raw.indexOf("?");
    const path = q < 0 ? raw : raw.slice(0, q);
    const chat = chatDialect(path);
    const dialect = req.method === "POST" ? chat : undefined;
    const embed = EMBED_ROUTES.get(path);
    const known = chat !== undefined || embed !== undefined || GET_ROUTES.has(path);
    const key = known ? path : "unmatched";
    this.stats.requests[key] = (this.stats.requests[key] ?? 0) + 1;
    if (embed !== undefined && req.method === "POST") {
      this.#embed(req, res, embed);
      return;
    }
    if (dialect !== undefined) {
      this.#chat(req, res, path, dialect);
      return;
    }
    req.resume();
    const vendor = claimant(path, req.headers);
    const requestId = this.#requestId();
    const render = vendor.get[path];
    if (req.method === "GET" && (path === "/" || render !== undefined)) {
      const authError = this.#opts.apiKey === undefined ? null : vendor.checkAuth(req.headers, this.#opts.apiKey);
      if (authError !== null) {
        this.#sendError(res, vendor, 401, authError, requestId, undefined);
      } else if (render === undefined) {
        this.#send(res, 200, "text/plain; charset=utf-8", ROOT_TEXT, vendor, requestId);
      } else {
        this.#send(res, 200, "application/json", render(this.#models), vendor, requestId);
      }
      return;
    }
    const status = known ? 405 : 404;
    const what = known ? "Method not allowed" : "Unknown request URL";
    this.#sendError(res, vendor, status, `${what}: ${req.method ?? "?"} ${path}`, requestId, undefined);
  }

  #requestId(): string {
    return REQUEST_ID_PREFIX + ++this.#seq;
  }

  #send(res: http.ServerResponse, status: number, type: string, body: string, d: Dialect, requestId: string): void {
    this.#count(status);
    res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(body), [d.idHeader]: requestId });
    res.end(body);
  }

  #sendError(res: http.ServerResponse, d: Dialect, status: number, message: string, requestId: string, retryAfter: string | undefined): void {
    const { body, headers } = d.error(status, message, requestId, retryAfter);
    headers["content-length"] = String(Buffer.byteLength(body));
    this.#count(status);
    res.writeHead(status, headers);
    res.end(body);
  }

  #count(status: number): void {
    this.stats.statuses[status] = (this.stats.statuses[status] ?? 0) + 1;
  }

  // ---- embeddings ----

  /**
   * An embeddings request: the key checked, the body parsed, then the vectors, after the knobs
   * that make sense without a stream: latency, an injected status (with Retry-After, and
   * `x-sim-fail-times`), and a connection reset. Scripted steps are the chat requests' alone.
   */
  #embed(req: http.IncomingMessage, res: http.ServerResponse, wire: EmbedWire): void {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= this.#maxBodyBytes) chunks.push(chunk);
    });
    req.once("end", () => {
      if (res.destroyed) return;
      const d = wire.dialect;
      const requestId = this.#requestId();
      if (size > this.#maxBodyBytes) return this.#sendError(res, d, 413, `Request body larger than ${this.#maxBodyBytes} bytes.`, requestId, undefined);
      const authError = this.#opts.apiKey === undefined ? null : d.checkAuth(req.headers, this.#opts.apiKey);
      if (authError !== null) return this.#sendError(res, d, 401, authError, requestId, undefined);
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks, size).toString("utf8"));
      } catch {
        return this.#sendError(res, d, 400, "We could not parse the JSON body of your request.", requestId, undefined);
      }
      let hk: HeaderKnobs;
      try {
        hk = knobsFromHeaders(req.headers);
      } catch (err) {
        if (!(err instanceof KnobError)) throw err;
        return this.#sendError(res, d, 400, `simulator: ${err.message}`, requestId, undefined);
      }
      const parsed = wire.parse(body);
      if (typeof parsed === "string") return this.#sendError(res, d, 400, parsed, requestId, undefined);
      if (this.listenerCount("request") > 0) this.emit("request", { path: wire.path, method: "POST", headers: req.headers, body });
      const inject = hk.failTimes === undefined ? undefined : this.#failCounters.next(hk.failKey, hk.failTimes);
      const k = resolveKnobs(this.#run, undefined, hk.knobs, inject, this.#maxDelayMs);
      if (k.status !== undefined || k.fault !== undefined) this.stats.injected++;
      const answer = () => {
        if (res.destroyed) return;
        if (k.fault?.kind === "reset") res.socket?.resetAndDestroy();
        else if (k.status !== undefined) this.#sendError(res, d, k.status, messageFor(k.status), requestId, k.retryAfter);
        else this.#send(res, 200, "application/json", embedAnswer(wire, parsed), d, requestId);
      };
      if (k.latencyMs <= 0) answer();
      else setTimeout(answer, k.latencyMs).unref();
    });
  }

  // ---- chat ----

  #chat(req: http.IncomingMessage, res: http.ServerResponse, path: string, d: Dialect): void {
    const tag = req.headers[KNOB_HEADERS.tag] ?? req.headers[KNOB_HEADERS.failKey];
    const p: Pending = {
      path,
      tag: typeof tag === "string" ? tag : undefined,
      startedAt: performance.now(),
      timer: undefined,
      selfDestroyed: false,
      stalled: false,
      tokensSent: 0,
    };
    this.stats.inFlight++;
    res.once("close", () => this.#onClose(p, res));
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > this.#maxBodyBytes) tooLarge = true;
      else chunks.push(chunk);
    });
    req.once("end", () => {
      if (res.destroyed) return;
      const requestId = this.#requestId();
      if (tooLarge) {
        this.#sendError(res, d, 413, `Request body larger than ${this.#maxBodyBytes} bytes.`, requestId, undefined);
        return;
      }
      const buf = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size);
      this.#accept(req, res, p, d, buf, requestId);
    });
  }

  #accept(req: http.IncomingMessage, res: http.ServerResponse, p: Pending, d: Dialect, buf: Buffer, requestId: string): void {
    let hk: HeaderKnobs;
    try {
      hk = knobsFromHeaders(req.headers);
    } catch (err) {
      if (!(err instanceof KnobError)) throw err;
      this.#sendError(res, d, 400, `simulator: ${err.message}`, requestId, undefined);
      return;
    }
    const authError = this.#opts.apiKey === undefined ? null : d.checkAuth(req.headers, this.#opts.apiKey);
    if (authError !== null) {
      this.#sendError(res, d, 401, authError, requestId, undefined);
      return;
    }
    const headerError = d.checkHeaders(req.headers);
    if (headerError !== null) {
      this.#sendError(res, d, 400, headerError, requestId, undefined);
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(buf.toString("utf8"));
    } catch {
      this.#sendError(res, d, 400, "We could not parse the JSON body of your request.", requestId, undefined);
      return;
    }
    const request = d.parse(body, p.path);
    if (typeof request === "string") {
      this.#sendError(res, d, 400, request, requestId, undefined);
      return;
    }
    if (this.listenerCount("request") > 0) {
      this.emit("request", { path: p.path, method: req.method ?? "POST", headers: req.headers, body });
    }
    const script = this.#opts.script;
    const step = script !== undefined && this.#scriptIndex < script.length ? script[this.#scriptIndex++] : undefined;
    const inject = hk.failTimes === undefined ? undefined : this.#failCounters.next(hk.failKey, hk.failTimes);
    const k = resolveKnobs(this.#run, step, hk.knobs, inject, this.#maxDelayMs);
    if (k.status !== undefined || k.fault !== undefined) this.stats.injected++;
    this.#after(p, k.latencyMs, () => this.#respond(res, p, d, request, k, requestId));
  }

  /** Runs `fn` now when `ms` is 0 (the benchmark path: no timer), else after `ms`. */
  #after(p: Pending, ms: number, fn: () => void): void {
    if (ms <= 0) fn();
    else p.timer = setTimeout(fn, ms);
  }

  #respond(res: http.ServerResponse, p: Pending, d: Dialect, request: ChatRequest, k: ResolvedKnobs, requestId: string): void {
    if (res.destroyed) return;
    const fault = k.fault;
    if (fault?.kind === "reset") {
      p.selfDestroyed = true;
      res.socket?.resetAndDestroy();
      return;
    }
    if (fault?.kind === "stall") {
      this.#stall(res, p);
      return;
    }
    if (k.status !== undefined && fault?.kind !== "error-after") {
      this.#sendError(res, d, k.status, messageFor(k.status), requestId, k.retryAfter);
      return;
    }
    const x: Exchange = {
      id: d.idPrefix + requestId.slice(REQUEST_ID_PREFIX.length),
      requestId,
      created: Math.floor(Date.now() / 1000),
      startedAt: p.startedAt,
      request,
      completion: generate(request, k.text, k.outputTokens, k.detail, k.json),
      chunkHead: "",
    };
    if (request.stream) this.#stream(res, p, d, x, k);
    else this.#unary(res, p, d, x, k);
  }

  /** Holds the request without a byte more until the client (or close()) ends it, or maxStallMs passes. */
  #stall(res: http.ServerResponse, p: Pending): void {
    p.stalled = true;
    p.timer = setTimeout(() => {
      p.selfDestroyed = true;
      res.destroy();
    }, this.#maxStallMs);
  }

  /** Writes what is left, then drops the connection (FIN, so the client reads what was sent first). */
  #cut(res: http.ServerResponse, p: Pending, out: string): void {
    const drop = () => {
      p.selfDestroyed = true;
      res.destroy();
    };
    if (out.length === 0) {
      res.flushHeaders();
      setImmediate(drop);
    } else {
      res.write(out, drop);
    }
  }

  #unary(res: http.ServerResponse, p: Pending, d: Dialect, x: Exchange, k: ResolvedKnobs): void {
    const n = x.completion.tokens.length;
    const generation = n === 0 ? 0 : k.ttftMs + k.interTokenMs * (n - 1);
    this.#after(p, Math.min(generation, this.#maxDelayMs), () => {
      if (res.destroyed) return;
      const fault = k.fault;
      if (fault?.kind === "error-after") {
        // Unary has no stream to break: the error comes as the response, after the generation time.
        const status = k.status ?? 500;
        this.#sendError(res, d, status, messageFor(status), x.requestId, k.retryAfter);
        return;
      }
      const body = d.json(x);
      const half = body.slice(0, body.length >> 1);
      this.#count(200);
      if (fault?.kind === "malformed") {
        res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(half), [d.idHeader]: x.requestId });
        res.end(half);
        return;
      }
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body), [d.idHeader]: x.requestId });
      if (fault?.kind === "cut-after") {
        this.#cut(res, p, half);
      } else if (fault?.kind === "stall-after") {
        res.write(half);
        this.#stall(res, p);
      } else {
        res.end(body);
      }
    });
  }

  #stream(res: http.ServerResponse, p: Pending, d: Dialect, x: Exchange, k: ResolvedKnobs): void {
    const n = x.completion.tokens.length;
    const fault = k.fault;
    const faultAt = fault === undefined || fault.kind === "reset" || fault.kind === "stall" ? -1 : Math.min(fault.tokens, n);
    const state: StreamState = { res, p, d, x, k, n, faultAt, sent: 0 };
    this.#count(200);
    res.writeHead(200, { "content-type": d.streamContentType, "cache-control": "no-cache", [d.idHeader]: x.requestId });
    const start = d.streamStart(x);
    if (k.ttftMs > 0) {
      // Headers (and the preamble) now, so the client's call resolves; the first token after ttft.
      if (start.length > 0) res.write(start);
      else res.flushHeaders();
      p.timer = setTimeout(() => this.#pump(state, ""), k.ttftMs);
    } else {
      this.#pump(state, start);
    }
  }

  /**
   * Writes tokens until the stream ends, a fault fires, or the next token must wait.
   * With no inter-token delay the whole stream goes out in one write.
   */
  #pump(s: StreamState, carried: string): void {
    const { res, p, d, x, k, n } = s;
    if (res.destroyed) return;
    let out = carried;
    for (;;) {
      if (s.sent === s.faultAt) {
        switch (k.fault?.kind) {
          case "cut-after":
            this.#cut(res, p, out);
            return;
          case "stall-after":
            if (out.length > 0) res.write(out);
            else res.flushHeaders();
            this.#stall(res, p);
            return;
          case "error-after": {
            const status = k.status ?? 500;
            res.end(out + d.streamError(status, messageFor(status)));
            return;
          }
          case "malformed":
            out += d.streamMalformed(x);
            s.faultAt = -1;
            break;
        }
      }
      if (s.sent >= n) break;
      out += d.streamToken(x, s.sent);
      s.sent++;
      p.tokensSent = s.sent;
      if (k.interTokenMs > 0 && s.sent < n) {
        res.write(out);
        p.timer = setTimeout(() => this.#pump(s, ""), k.interTokenMs);
        return;
      }
    }
    res.end(out + d.streamEnd(x));
  }

  #onClose(p: Pending, res: http.ServerResponse): void {
    this.stats.inFlight--;
    if (p.timer !== undefined) clearTimeout(p.timer);
    if (res.writableFinished || p.selfDestroyed || this.#closing) return;
    const abort: ClientAbort = {
      path: p.path,
      tag: p.tag,
      phase: res.headersSent ? "after-headers" : "before-headers",
      stalled: p.stalled,
      tokensSent: p.tokensSent,
      elapsedMs: performance.now() - p.startedAt,
    };
    this.stats.clientAborts++;
    this.emit("client-abort", abort);
    this.#aborts.record(abort);
  }
}

interface StreamState {
  res: http.ServerResponse;
  p: Pending;
  d: Dialect;
  x: Exchange;
  k: ResolvedKnobs;
  n: number;
  faultAt: number;
  sent: number;
}

/** Starts a simulator on 127.0.0.1 (port 0 unless given). Close it with `close()`. */
export async function startSimulator(opts: SimulatorOptions = {}): Promise<Simulator> {
  return Simulator.listen(opts);
}
