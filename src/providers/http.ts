/**
 * HTTP plumbing shared by the provider adapters: a pooled, keep-alive `fetch` for the
 * vendor SDKs, Retry-After parsing, and the operator-defined extra headers of a deployment.
 */
import http from "node:http";
import https from "node:https";
import { Readable, pipeline } from "node:stream";
import zlib from "node:zlib";
import type { DeploymentConfig } from "../config.js";
import { LlmError } from "../errors/llm-error.js";
import { TAXONOMY, type ErrorReason } from "../errors/taxonomy.js";

/** The `fetch` shape every vendor SDK accepts. */
export type FetchFunction = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

// ---------------------------------------------------------------------------------------------
// Retry-After

/** Reads a header from a fetch Headers or anything with the same `get`. */
export interface HeaderSource {
  get(name: string): string | null;
}

/** Longest wait a header may ask for (a day): anything longer is treated as this. */
const MAX_RETRY_AFTER_MS = 86_400_000;

function clampMs(ms: number): number {
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(0, Math.ceil(ms)));
}

/** A Retry-After value: delta-seconds (decimals tolerated) or an HTTP date; undefined when unusable. */
export function parseRetryAfterValue(value: string, now: number): number | undefined {
  const v = value.trim();
  if (v.length === 0) return undefined;
  if (/^\d+(\.\d+)?$/.test(v)) return clampMs(Number(v) * 1000);
  // An HTTP date (IMF-fixdate, or the obsolete forms Date.parse also reads). Digits-only
  // strings were handled above, so a bare number never reaches Date.parse.
  if (!/[a-z]/i.test(v)) return undefined;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : clampMs(at - now);
}

/**
 * How long the upstream asks us to wait, in ms: `retry-after-ms` (OpenAI and Azure send it,
 * more precise) over `retry-after` (seconds or an HTTP date, RFC 9110 §10.2.3).
 * Undefined when neither is present and valid. Negative waits (a date in the past) are 0.
 */
export function parseRetryAfter(headers: HeaderSource | undefined, now: number = Date.now()): number | undefined {
  if (headers === undefined) return undefined;
  const ms = headers.get("retry-after-ms");
  if (ms !== null && /^\s*\d+(\.\d+)?\s*$/.test(ms)) return clampMs(Number(ms));
  const value = headers.get("retry-after");
  return value === null ? undefined : parseRetryAfterValue(value, now);
}

/**
 * A Go-style duration as OpenAI sends it in `x-ratelimit-reset-*`: "1s", "6m0s", "20ms",
 * "1h2m3.5s". Undefined when it is not one.
 */
export function parseDurationMs(value: string): number | undefined {
  const v = value.trim();
  if (!/^(\d+(\.\d+)?(h|m|s|ms))+$/.test(v)) return undefined;
  const UNIT: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 };
  let total = 0;
  for (const [, n, , unit] of v.matchAll(/(\d+(\.\d+)?)(ms|h|m|s)/g)) total += Number(n) * (UNIT[unit as string] ?? 0);
  return clampMs(total);
}

// ---------------------------------------------------------------------------------------------
// Extra headers per deployment

/** The prefix of a deployment option that names an extra request header: `header:HTTP-Referer`. */
export const HEADER_OPTION_PREFIX = "header:";

/**
 * Headers an operator may not set this way: credentials belong in `apiKeyEnv` (so they never
 * sit in the catalogue file), and framing headers would corrupt the request.
 */
const FORBIDDEN_HEADERS = new Set([
  "authorization",
  "x-api-key",
  "api-key",
  "proxy-authorization",
  "host",
  "content-length",
  "content-type",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "upgrade",
  "te",
  "trailer",
]);

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * Operator-defined extra request headers of a deployment (its `options["header:<name>"]`),
 * for endpoints that want them (OpenRouter's HTTP-Referer and X-Title, a proxy's routing
 * header, the simulator's `x-sim-*` knobs). They come from the catalogue only, never from a
 * request. Credential and framing headers, invalid names and values with line breaks are skipped.
 */
export function deploymentHeaders(deployment: DeploymentConfig): Record<string, string> | undefined {
  let headers: Record<string, string> | undefined;
  for (const key in deployment.options) {
    if (!key.startsWith(HEADER_OPTION_PREFIX)) continue;
    const name = key.slice(HEADER_OPTION_PREFIX.length).trim();
    const value = String(deployment.options[key]);
    if (!TOKEN.test(name) || FORBIDDEN_HEADERS.has(name.toLowerCase()) || /[\r\n\0]/.test(value)) continue;
    (headers ??= {})[name] = value;
  }
  return headers;
}

// ---------------------------------------------------------------------------------------------
// A pooled fetch over node:http

export interface HttpFetchOptions {
  /** Sockets per origin, in use and idle together; requests beyond it queue. Default 256. */
  maxSocketsPerOrigin?: number;
  /** Idle sockets kept per origin. Default 64. */
  maxIdlePerOrigin?: number;
  /**
   * How long an idle socket is kept. Default 4 s, like undici: shorter than the usual
   * server-side keep-alive (5 s in Node, 60 s+ at the big vendors), so we close first
   * and never write a request into a socket the server is closing.
   */
  idleTimeoutMs?: number;
  /** Where bodies node:http cannot send directly (streams, forms, blobs) go. Default: the global fetch. */
  fallback?: FetchFunction;
  /**
   * Adds headers of the calling context to every request: the active trace context
   * (traceparent, tracestate), so the upstream continues the trace. Headers the caller set win.
   */
  injectHeaders?: (headers: Record<string, string>) => void;
}

export interface HttpFetch {
  readonly fetch: FetchFunction;
  /** Destroys every pooled socket. */
  close(): void;
}

/** Statuses whose responses have no body (fetch's Response refuses one). */
const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

function headerRecord(init: RequestInit["headers"]): Record<string, string> {
  const out: Record<string, string> = {};
  if (init === undefined) return out;
  if (init instanceof Headers) {
    init.forEach((value, name) => {
      out[name] = value;
    });
  } else if (Array.isArray(init)) {
    for (const [name, value] of init) if (name !== undefined && value !== undefined) out[name.toLowerCase()] = value;
  } else {
    for (const name in init) {
      const value = (init as Record<string, string | undefined>)[name];
      if (value !== undefined && value !== null) out[name.toLowerCase()] = String(value);
    }
  }
  return out;
}

function bodyBytes(body: RequestInit["body"]): string | Uint8Array | null | undefined {
  if (body === undefined || body === null) return null;
  if (typeof body === "string" || body instanceof Uint8Array) return body;
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  if (ArrayBuffer.isView(body)) return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  return undefined;
}

function abortError(signal: AbortSignal): unknown {
  // fetch rejects with the signal's reason (a DOMException AbortError when none was given).
  return signal.reason ?? new DOMException("This operation was aborted", "AbortError");
}

function decoder(encoding: string | undefined): zlib.Gunzip | zlib.Inflate | zlib.BrotliDecompress | undefined {
  switch (encoding?.trim().toLowerCase()) {
    case "gzip":
    case "x-gzip":
      return zlib.createGunzip();
    case "deflate":
      return zlib.createInflate();
    case "br":
      return zlib.createBrotliDecompress();
    default:
      return undefined;
  }
}

/** The response body, decoded when the server compressed it anyway; errors and cancels travel both ways. */
function decoded(res: http.IncomingMessage): Readable {
  const z = decoder(res.headers["content-encoding"]);
  if (z === undefined) return res;
  pipeline(res, z, () => {});
  return z;
}

/**
 * A Node Readable as a web ReadableStream: each chunk as it comes, the Readable paused while the
 * stream's queue is full, its error as the stream's, a close before the end as a TypeError (as
 * fetch reports a cut body), and a cancel destroying it. `Readable.toWeb` does the same, but
 * every body it adapted stayed reachable for V8's young-generation collections until the next
 * full GC, with what the openai SDK hangs on the response: copied and promoted, it lengthened
 * every scavenge pause. Through the SDK, 9.0 KiB per call survived with it and 4.6 with this
 * (`npm run bench:gc`, bench/README.md "Young-generation survival").
 */
export function webStream(body: Readable): ReadableStream<Uint8Array> {
  let done = false;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      body.on("data", (chunk: Buffer) => {
        controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        if ((controller.desiredSize ?? 0) <= 0) body.pause();
      });
      body.once("end", () => {
        if (done) return;
        done = true;
        controller.close();
      });
      body.once("error", (err) => {
        if (done) return;
        done = true;
        controller.error(err);
      });
      body.once("close", () => {
        if (done) return;
        done = true;
        controller.error(new TypeError("terminated", { cause: new Error("the connection closed before the body ended") }));
      });
      body.pause();
    },
    pull() {
      body.resume();
    },
    cancel(reason) {
      done = true;
      body.destroy(reason instanceof Error ? reason : undefined);
    },
  });
}

/**
 * A `fetch` on node:http with one keep-alive pool per origin. It does what the SDKs need
 * (string or byte bodies, AbortSignal that tears the socket down, streamed response bodies)
 * at a fraction of the WHATWG fetch's per-request cost — see test/providers/http.test.ts and
 * the measurements in the providers' notes. It does not follow redirects (an LLM API does not
 * redirect a POST, and following one could send our credentials to another host), sends no
 * Accept-Encoding (SSE is not compressed; a compressed body is still decoded), and hands any
 * other body kind to `fallback`.
 */
export function createHttpFetch(options: HttpFetchOptions = {}): HttpFetch {
  const agentOptions: http.AgentOptions = {
    keepAlive: true,
    maxSockets: options.maxSocketsPerOrigin ?? 256,
    maxFreeSockets: options.maxIdlePerOrigin ?? 64,
    // Applies to idle sockets in the pool (the agent destroys them on timeout); an active
    // request's socket only gets a 'timeout' notice, which we ignore: the caller's signal decides.
    timeout: options.idleTimeoutMs ?? 4_000,
    scheduling: "lifo",
  };
  const httpAgent = new http.Agent(agentOptions);
  const httpsAgent = new https.Agent(agentOptions);
  const baseFallback = options.fallback ?? ((input, init) => globalThis.fetch(input, init));
  const inject = options.injectHeaders;
  /** The context's headers, minus those the caller set itself. */
  const injected = (present: (name: string) => boolean): Record<string, string> | undefined => {
    if (inject === undefined) return undefined;
    const extra: Record<string, string> = {};
    inject(extra);
    let out: Record<string, string> | undefined;
    for (const name in extra) if (!present(name)) (out ??= {})[name] = extra[name] as string;
    return out;
  };
  const fallback: FetchFunction = (input, init = {}) => {
    if (input instanceof Request) return baseFallback(input, init);
    const headers = new Headers(init.headers);
    const extra = injected((name) => headers.has(name));
    if (extra === undefined) return baseFallback(input, init);
    for (const name in extra) headers.set(name, extra[name] as string);
    return baseFallback(input, { ...init, headers });
  };

  const fetchImpl: FetchFunction = (input, init = {}) => {
    if (input instanceof Request) return fallback(input, init);
    const body = bodyBytes(init.body);
    if (body === undefined) return fallback(input, init);
    const url = typeof input === "string" ? new URL(input) : input;
    const secure = url.protocol === "https:";
    if (!secure && url.protocol !== "http:") return fallback(input, init);
    const signal = init.signal ?? undefined;
    if (signal?.aborted) return Promise.reject(abortError(signal));

    return new Promise<Response>((resolve, reject) => {
      const headers = headerRecord(init.headers);
      const extra = injected((name) => headers[name] !== undefined);
      if (extra !== undefined) Object.assign(headers, extra);
      if (body !== null) headers["content-length"] = String(typeof body === "string" ? Buffer.byteLength(body) : body.byteLength);
      const req = (secure ? https : http).request(url, {
        method: (init.method ?? "GET").toUpperCase(),
        headers,
        agent: secure ? httpsAgent : httpAgent,
      });
      let settled = false;
      let responseBody: Readable | undefined;
      const onAbort = () => {
        const reason = abortError(signal as AbortSignal);
        // Destroying the body (or the request before there is one) destroys the socket: the
        // upstream sees the client go. A body read then fails with the signal's reason, as in fetch.
        const error = reason instanceof Error ? reason : new DOMException("This operation was aborted", "AbortError");
        if (responseBody !== undefined) responseBody.destroy(error);
        else req.destroy(error);
        if (!settled) {
          settled = true;
          reject(reason);
        }
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      const release = () => signal?.removeEventListener("abort", onAbort);

      req.on("error", (err) => {
        if (settled) return;
        settled = true;
        release();
        reject(new TypeError("fetch failed", { cause: err }));
      });
      req.once("response", (res) => {
        if (settled) {
          res.destroy();
          return;
        }
        settled = true;
        const status = res.statusCode ?? 0;
        if (status < 200 || status > 599) {
          // fetch's Response cannot hold it; nor can an SDK make sense of it.
          res.destroy();
          release();
          reject(new TypeError("fetch failed", { cause: new Error(`invalid HTTP status ${status}`) }));
          return;
        }
        const responseHeaders = new Headers();
        const raw = res.rawHeaders;
        for (let i = 0; i + 1 < raw.length; i += 2) responseHeaders.append(raw[i] as string, raw[i + 1] as string);
        const nullBody = NULL_BODY_STATUSES.has(status) || init.method?.toUpperCase() === "HEAD";
        // The abort listener stays until the body is done, so aborting mid-stream closes the
        // socket (the upstream sees the client go) rather than returning it to the pool.
        res.once("close", release);
        let stream: ReadableStream<Uint8Array> | null = null;
        if (nullBody) {
          res.resume();
        } else {
          responseBody = decoded(res);
          stream = webStream(responseBody);
        }
        const response = new Response(stream, { status, statusText: res.statusMessage ?? "", headers: responseHeaders });
        Object.defineProperty(response, "url", { value: url.href });
        resolve(response);
      });
      req.end(body ?? undefined);
    });
  };

  return {
    fetch: fetchImpl,
    close() {
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Failures on the wire

/**
 * Whether an error is the connection or its bytes failing (reset, refused, cut mid-body,
 * TLS, a body that does not parse) rather than a bug of ours: fetch rejects with TypeError,
 * node:net and undici errors carry a string `code`, a broken JSON chunk is a SyntaxError.
 */
export function isWireFailure(err: unknown): boolean {
  if (err instanceof TypeError || err instanceof SyntaxError) return true;
  return err instanceof Error && typeof (err as { code?: unknown }).code === "string";
}

// ---------------------------------------------------------------------------------------------
// Upstream failures as LlmErrors

/** A vendor's table lookup: unlisted 4xx → PROVIDER_REJECTED, anything else → PROVIDER_UNAVAILABLE. */
export function reasonForStatus(table: Readonly<Record<number, ErrorReason>>, status: number): ErrorReason {
  return table[status] ?? (status >= 400 && status < 500 ? "PROVIDER_REJECTED" : "PROVIDER_UNAVAILABLE");
}

export interface UpstreamFailure {
  /** The upstream HTTP status, when there was one (goes to ErrorInfo metadata). */
  status?: number;
  /** From Retry-After; kept only for reasons the router may retry. */
  retryAfterMs?: number;
}

/**
 * The LlmError for an upstream failure: a generic message the adapter chose ("openai returned
 * 503": never the upstream body, which may echo the prompt or a key), safe metadata
 * (provider, upstream_status), Retry-After when waiting would help, and the vendor's error
 * as `cause` for the service's own redacted logs.
 */
export function upstreamError(provider: string, reason: ErrorReason, message: string, cause: unknown, extra: UpstreamFailure = {}): LlmError {
  const metadata: Record<string, string> = { provider };
  if (extra.status !== undefined) metadata.upstream_status = String(extra.status);
  return new LlmError(reason, message, {
    metadata,
    cause,
    ...(extra.retryAfterMs !== undefined && TAXONOMY[reason].retryable ? { retryAfterMs: extra.retryAfterMs } : {}),
    ...(reason === "CONTEXT_LENGTH_EXCEEDED"
      ? { fieldViolations: [{ field: "messages", description: "the prompt and max_output_tokens exceed the model's context window" }] }
      : {}),
  });
}

/** The client-facing message for an upstream HTTP error. */
export function statusMessage(provider: string, reason: ErrorReason, status: number): string {
  if (reason === "CONTEXT_LENGTH_EXCEEDED") return `${provider}: the prompt is too long for the model's context window`;
  if (reason === "PROVIDER_AUTH_FAILED") return `${provider} refused the service's credentials (${status})`;
  return `${provider} returned ${status}`;
}
