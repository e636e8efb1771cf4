/**
 * A minimal `fetch` over undici's `Pool.request`, for measuring against the gateway's own fetch
 * (bench/fetch-cpu.ts): one pool per origin, string or byte bodies, the response body through
 * the same `webStream` adapter as src/providers/http.ts. Happy path only: it is a measuring stick,
 * not the gateway's fetch.
 */
import { join } from "node:path";
import { Pool } from "undici";
import { ROOT } from "./setup.ts";

const { webStream } = (await import(join(ROOT, "dist/src/providers/http.js"))) as typeof import("../src/providers/http.ts");

type Fetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

function headerRecord(init: RequestInit["headers"]): Record<string, string> {
  const out: Record<string, string> = {};
  if (init instanceof Headers) init.forEach((v, k) => (out[k] = v));
  else if (Array.isArray(init)) for (const [k, v] of init) out[k!.toLowerCase()] = v!;
  else if (init) for (const k in init) out[k.toLowerCase()] = String((init as Record<string, string>)[k]);
  return out;
}

export function createUndiciFetch(options: { connections?: number } = {}): { fetch: Fetch; close(): Promise<void> } {
  const pools = new Map<string, Pool>();
  const pool = (origin: string): Pool => {
    let p = pools.get(origin);
    if (p === undefined) pools.set(origin, (p = new Pool(origin, { connections: options.connections ?? 256, keepAliveTimeout: 4000 })));
    return p;
  };
  const fetch: Fetch = async (input, init = {}) => {
    if (input instanceof Request) throw new TypeError("undici-fetch: Request inputs are not supported");
    const url = typeof input === "string" ? new URL(input) : input;
    const body = init.body as string | Uint8Array | null | undefined;
    const r = await pool(url.origin).request({
      path: url.pathname + url.search,
      method: (init.method ?? "GET").toUpperCase() as "GET",
      headers: headerRecord(init.headers),
      body: body ?? null,
      ...(init.signal ? { signal: init.signal } : {}),
    });
    const headers = new Headers();
    for (const name in r.headers) {
      const v = r.headers[name];
      if (Array.isArray(v)) for (const x of v) headers.append(name, x);
      else if (v !== undefined) headers.append(name, v);
    }
    return new Response(webStream(r.body), { status: r.statusCode, headers });
  };
  return {
    fetch,
    async close() {
      await Promise.all([...pools.values()].map((p) => p.close()));
    },
  };
}

/**
 * The same over undici's lowest level, `Pool.dispatch`: the response's chunks go from undici's
 * handler straight into the web stream (no Node Readable in between), and a full queue pauses
 * the socket through the dispatch controller.
 */
export function createUndiciDispatchFetch(options: { connections?: number } = {}): { fetch: Fetch; close(): Promise<void> } {
  const pools = new Map<string, Pool>();
  const pool = (origin: string): Pool => {
    let p = pools.get(origin);
    if (p === undefined) pools.set(origin, (p = new Pool(origin, { connections: options.connections ?? 256, keepAliveTimeout: 4000 })));
    return p;
  };
  const fetch: Fetch = (input, init = {}) => {
    if (input instanceof Request) return Promise.reject(new TypeError("undici-fetch: Request inputs are not supported"));
    const url = typeof input === "string" ? new URL(input) : input;
    const body = init.body as string | Uint8Array | null | undefined;
    return new Promise<Response>((resolve, reject) => {
      let stream: ReadableStreamDefaultController<Uint8Array> | undefined;
      pool(url.origin).dispatch(
        { path: url.pathname + url.search, method: (init.method ?? "GET").toUpperCase() as "GET", headers: headerRecord(init.headers), body: body ?? null },
        {
          onRequestStart() {},
          onResponseStart(controller, statusCode, raw) {
            const headers = new Headers();
            for (const name in raw) {
              const v = raw[name];
              if (Array.isArray(v)) for (const x of v) headers.append(name, x);
              else if (v !== undefined) headers.append(name, v);
            }
            const readable = new ReadableStream<Uint8Array>({
              start(c) {
                stream = c;
              },
              pull() {
                if (controller.paused) controller.resume();
              },
              cancel(reason) {
                controller.abort(reason instanceof Error ? reason : new Error("cancelled"));
              },
            });
            resolve(new Response(readable, { status: statusCode, headers }));
          },
          onResponseData(controller, chunk) {
            stream?.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
            if ((stream?.desiredSize ?? 0) <= 0) controller.pause();
          },
          onResponseEnd() {
            stream?.close();
          },
          onResponseError(_controller, err) {
            if (stream) stream.error(err);
            else reject(new TypeError("fetch failed", { cause: err }));
          },
        },
      );
    });
  };
  return {
    fetch,
    async close() {
      await Promise.all([...pools.values()].map((p) => p.close()));
    },
  };
}
