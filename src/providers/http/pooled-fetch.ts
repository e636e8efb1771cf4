/**
 * The `fetch` the vendor SDKs are given: undici's `Agent.dispatch` (one keep-alive pool per
 * origin) with the response's chunks handed straight from undici's handler to the web stream the
 * SDK reads. It costs the openai SDK about a quarter less CPU per call than the same fetch on
 * node:http with a Readable adapted to a web stream, and half what Node's built-in fetch does
 * (`node bench/fetch-cpu.ts`, bench/README.md "What sits under the SDKs").
 */
import zlib from "node:zlib";
import { Agent, type Dispatcher } from "undici";
import { webStream } from "./web-stream.js";

/** The `fetch` shape every vendor SDK accepts. */
export type FetchFunction = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

export interface HttpFetchOptions {
  /** Connections per origin, in use and idle together; requests beyond it queue. Default 256. */
  maxSocketsPerOrigin?: number;
  /**
   * Kept for callers of the node:http version, which capped idle sockets per origin. undici keeps
   * every connection until it has been idle for `idleTimeoutMs`; this is not applied.
   */
  maxIdlePerOrigin?: number;
  /**
   * How long an idle connection is kept. Default 4 s, like undici: shorter than the usual
   * server-side keep-alive (5 s in Node, 60 s+ at the big vendors), so we close first
   * and never write a request into a socket the server is closing.
   */
  idleTimeoutMs?: number;
  /** Where bodies this fetch does not send itself (streams, forms, blobs) go. Default: the global fetch. */
  fallback?: FetchFunction;
  /**
   * Adds headers of the calling context to every request: the active trace context
   * (traceparent, tracestate), so the upstream continues the trace. Headers the caller set win.
   */
  injectHeaders?: (headers: Record<string, string>) => void;
}

export interface HttpFetch {
  readonly fetch: FetchFunction;
  /** Destroys every pooled connection. */
  close(): void;
}

/** Statuses whose responses have no body (fetch's Response refuses one). */
const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

/** Bytes of a response body that may wait unread before the socket is paused (as undici's fetch). */
const BODY_HIGH_WATER_MARK = 64 * 1024;

/** Headers the pool owns (undici refuses some of them, and computes content-length itself). */
const POOL_HEADERS = new Set(["connection", "keep-alive", "transfer-encoding", "upgrade", "expect", "content-length"]);

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
  for (const name of POOL_HEADERS) delete out[name];
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

/** What undici gets when the caller aborts (the caller sees its own reason). */
function connectionAborted(): Error {
  return new Error("the caller aborted the request");
}

function asError(reason: unknown): Error {
  return reason instanceof Error ? reason : new DOMException("This operation was aborted", "AbortError");
}

function decoder(encoding: string | string[] | undefined): zlib.Gunzip | zlib.Inflate | zlib.BrotliDecompress | undefined {
  switch ((Array.isArray(encoding) ? encoding.at(-1) : encoding)?.trim().toLowerCase()) {
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

function responseHeaders(raw: Record<string, string | string[] | undefined>): Headers {
  const headers = new Headers();
  for (const name in raw) {
    const value = raw[name];
    if (Array.isArray(value)) for (const v of value) headers.append(name, v);
    else if (value !== undefined) headers.append(name, value);
  }
  return headers;
}

/**
 * One request's life, as undici's dispatch handler: the fetch promise until the response starts,
 * then the body's web stream until it ends. The caller's signal aborts either: before the response
 * the promise rejects with the signal's reason, after it the body errors with it; both destroy the
 * connection, so the upstream sees the client go.
 */
class ResponseHandler implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | undefined;
  /** The body's stream controller, once the response started (absent for a null body). */
  private body: ReadableStreamDefaultController<Uint8Array> | undefined;
  /** For a compressed body: raw chunks go in, the stream reads what comes out. */
  private inflate: zlib.Gunzip | zlib.Inflate | zlib.BrotliDecompress | undefined;
  /** The fetch promise is settled. */
  private settled = false;
  /** The body ended, failed or was cancelled: nothing more goes into it. */
  private done = false;
  private readonly onAbort = (): void => this.abort();

  constructor(
    private readonly url: URL,
    private readonly method: string,
    private readonly signal: AbortSignal | undefined,
    private readonly resolve: (response: Response) => void,
    private readonly reject: (reason: unknown) => void,
  ) {
    signal?.addEventListener("abort", this.onAbort, { once: true });
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.signal?.aborted) this.abort();
  }

  onResponseStart(controller: Dispatcher.DispatchController, status: number, raw: Record<string, string | string[] | undefined>, statusText?: string): void {
    if (this.settled) return;
    this.settled = true;
    if (status < 200 || status > 599) {
      // fetch's Response cannot hold it; nor can an SDK make sense of it.
      this.done = true;
      this.release();
      controller.abort(new Error(`invalid HTTP status ${status}`));
      this.reject(new TypeError("fetch failed", { cause: new Error(`invalid HTTP status ${status}`) }));
      return;
    }
    let stream: ReadableStream<Uint8Array> | null = null;
    if (NULL_BODY_STATUSES.has(status) || this.method === "HEAD") {
      this.done = true;
    } else {
      this.inflate = decoder(raw["content-encoding"]);
      stream = this.inflate ? this.inflatedStream(controller, this.inflate) : this.directStream(controller);
    }
    const response = new Response(stream, { status, statusText: statusText ?? "", headers: responseHeaders(raw) });
    Object.defineProperty(response, "url", { value: this.url.href });
    this.resolve(response);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    // undici hands over an empty chunk when a paused parser resumes: passing it on (and pausing
    // again) would feed the reader empty chunks forever and never reach the socket's end.
    if (this.done || chunk.byteLength === 0) return;
    if (this.inflate) {
      if (!this.inflate.write(chunk)) controller.pause();
      return;
    }
    const body = this.body as ReadableStreamDefaultController<Uint8Array>;
    body.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    if ((body.desiredSize ?? 0) <= 0) controller.pause();
  }

  onResponseEnd(): void {
    if (this.inflate) {
      // The decoder's end ends the stream (webStream), and releases the signal then.
      this.inflate.end();
      return;
    }
    this.release();
    if (this.done) return;
    this.done = true;
    // undici frees the connection for the next request in a setImmediate it queues once this
    // returns: ending the body (and so resolving the reader's last read) in one queued after it
    // lets the next call of a sequence reuse the connection instead of opening another.
    process.nextTick(() => setImmediate(() => this.closeBody()));
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.release();
    if (!this.settled) {
      this.settled = true;
      this.done = true;
      this.reject(new TypeError("fetch failed", { cause: err }));
      return;
    }
    if (this.done) return;
    this.done = true;
    // As fetch reports a body cut short: a TypeError with the cause.
    const error = new TypeError("terminated", { cause: err });
    if (this.inflate) this.inflate.destroy(error);
    else this.body?.error(error);
  }

  private closeBody(): void {
    try {
      this.body?.close();
    } catch {
      // The reader cancelled the stream in the meantime: nothing to end.
    }
  }

  private directStream(controller: Dispatcher.DispatchController): ReadableStream<Uint8Array> {
    return new ReadableStream<Uint8Array>(
      {
        start: (c) => {
          this.body = c;
        },
        pull: () => {
          if (controller.paused) controller.resume();
        },
        cancel: (reason) => {
          this.done = true;
          this.release();
          controller.abort(asError(reason));
        },
      },
      // The socket pauses only once this much waits unread. A reader that stops at a body's last
      // message without cancelling (the ollama SDK stops at `done`) must not hold the connection:
      // with a small queue the parser would pause before the body's end and never free it.
      { highWaterMark: BODY_HIGH_WATER_MARK, size: (chunk) => chunk.byteLength },
    );
  }

  private inflatedStream(controller: Dispatcher.DispatchController, inflate: zlib.Gunzip | zlib.Inflate | zlib.BrotliDecompress): ReadableStream<Uint8Array> {
    inflate.on("drain", () => {
      if (controller.paused) controller.resume();
    });
    inflate.once("close", () => this.release());
    inflate.once("error", (err) => {
      // A body that does not decode: stop reading it.
      this.done = true;
      controller.abort(err);
    });
    return webStream(inflate);
  }

  private abort(): void {
    const reason = abortError(this.signal as AbortSignal);
    this.release();
    if (!this.settled) {
      this.settled = true;
      this.done = true;
      this.reject(reason);
    } else if (!this.done) {
      this.done = true;
      if (this.inflate) this.inflate.destroy(asError(reason));
      else this.body?.error(reason);
    }
    // Destroys the connection (undici never reuses one whose request did not finish). Destroying
    // the socket formats the stack of errors undici makes there, which only undici sees: made
    // without a stack, as with source maps on (tests, --enable-source-maps) the first formatting
    // parsed the map of every file on it, ~15 ms on the event loop (50+ on a busy machine).
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      this.controller?.abort(connectionAborted());
    } finally {
      Error.stackTraceLimit = limit;
    }
  }

  private release(): void {
    this.signal?.removeEventListener("abort", this.onAbort);
  }
}

/**
 * A `fetch` on undici's pool, one keep-alive pool per origin. It does what the SDKs need
 * (string or byte bodies, an AbortSignal that tears the connection down, streamed response
 * bodies) at a fraction of the WHATWG fetch's per-request cost — see test/providers/http.test.ts
 * and bench/README.md. It does not follow redirects (an LLM API does not redirect a POST, and
 * following one could send our credentials to another host), sends no Accept-Encoding (SSE is
 * not compressed; a compressed body is still decoded), and hands any other body kind to `fallback`.
 */
export function createHttpFetch(options: HttpFetchOptions = {}): HttpFetch {
  const idle = options.idleTimeoutMs ?? 4_000;
  const agent = new Agent({ connections: options.maxSocketsPerOrigin ?? 256, keepAliveTimeout: idle, keepAliveMaxTimeout: idle, pipelining: 1 });
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
    if (url.protocol !== "http:" && url.protocol !== "https:") return fallback(input, init);
    const signal = init.signal ?? undefined;
    if (signal?.aborted) return Promise.reject(abortError(signal));
    const headers = headerRecord(init.headers);
    const extra = injected((name) => headers[name] !== undefined);
    if (extra !== undefined) Object.assign(headers, extra);
    const method = (init.method ?? "GET").toUpperCase();
    return new Promise<Response>((resolve, reject) => {
      const handler = new ResponseHandler(url, method, signal, resolve, reject);
      agent.dispatch({ origin: url.origin, path: url.pathname + url.search, method: method as Dispatcher.HttpMethod, headers, body }, handler);
    });
  };

  return {
    fetch: fetchImpl,
    close() {
      void agent.destroy();
    },
  };
}
