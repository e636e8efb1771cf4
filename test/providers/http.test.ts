/** providers/http.ts: Retry-After parsing, deployment headers, and the pooled fetch against a real socket. */
import http from "node:http";
import net from "node:net";
import { promisify } from "node:util";
import zlib from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DeploymentConfig } from "../../src/config.js";
import { PassThrough } from "node:stream";
import { createHttpFetch, deploymentHeaders, isWireFailure, parseDurationMs, parseRetryAfter, webStream, type FetchFunction } from "../../src/providers/http.js";

const NOW = Date.parse("2025-06-01T12:00:00Z");

describe("parseRetryAfter", () => {
  const h = (init: Record<string, string>) => new Headers(init);

  it("reads delta-seconds, including decimals", () => {
    expect(parseRetryAfter(h({ "retry-after": "2" }), NOW)).toBe(2000);
    expect(parseRetryAfter(h({ "retry-after": "0" }), NOW)).toBe(0);
    expect(parseRetryAfter(h({ "retry-after": "1.5" }), NOW)).toBe(1500);
  });

  it("reads an HTTP date relative to now, and a past date as 0", () => {
    expect(parseRetryAfter(h({ "retry-after": "Sun, 01 Jun 2025 12:00:30 GMT" }), NOW)).toBe(30_000);
    expect(parseRetryAfter(h({ "retry-after": "Sun, 01 Jun 2025 11:00:00 GMT" }), NOW)).toBe(0);
  });

  it("prefers retry-after-ms (OpenAI, Azure) over retry-after", () => {
    expect(parseRetryAfter(h({ "retry-after-ms": "250", "retry-after": "9" }), NOW)).toBe(250);
    expect(parseRetryAfter(h({ "retry-after-ms": "12.4" }), NOW)).toBe(13);
  });

  it("ignores what it cannot read, and the absence of both", () => {
    expect(parseRetryAfter(h({}), NOW)).toBeUndefined();
    expect(parseRetryAfter(undefined, NOW)).toBeUndefined();
    expect(parseRetryAfter(h({ "retry-after": "soon" }), NOW)).toBeUndefined();
    expect(parseRetryAfter(h({ "retry-after": "-5" }), NOW)).toBeUndefined();
    expect(parseRetryAfter(h({ "retry-after-ms": "abc", "retry-after": "3" }), NOW)).toBe(3000);
  });

  it("caps an absurd wait at a day", () => {
    expect(parseRetryAfter(h({ "retry-after": "99999999999" }), NOW)).toBe(86_400_000);
  });
});

describe("parseDurationMs (OpenAI x-ratelimit-reset-*)", () => {
  it("reads Go durations", () => {
    expect(parseDurationMs("1s")).toBe(1000);
    expect(parseDurationMs("6m0s")).toBe(360_000);
    expect(parseDurationMs("20ms")).toBe(20);
    expect(parseDurationMs("1h2m3.5s")).toBe(3_723_500);
    expect(parseDurationMs("soon")).toBeUndefined();
    expect(parseDurationMs("")).toBeUndefined();
  });
});

describe("deploymentHeaders", () => {
  const d = (options: DeploymentConfig["options"]): DeploymentConfig => ({ provider: "openai", model: "m", weight: 1, options });

  it("takes header:<name> options, as strings", () => {
    expect(deploymentHeaders(d({ "header:HTTP-Referer": "https://a.test", "header:X-Title": "app", "header:x-n": 3, other: "x" }))).toEqual({
      "HTTP-Referer": "https://a.test",
      "X-Title": "app",
      "x-n": "3",
    });
    expect(deploymentHeaders(d({ ttftMs: 3 }))).toBeUndefined();
  });

  it("refuses credentials, framing headers, bad names and values with line breaks", () => {
    const headers = deploymentHeaders(
      d({
        "header:Authorization": "Bearer x",
        "header:x-api-key": "k",
        "header:Content-Length": "1",
        "header:Host": "evil.test",
        "header:bad name": "v",
        "header:x-split": "a\r\nx-injected: 1",
        "header:x-ok": "fine",
      }),
    );
    expect(headers).toEqual({ "x-ok": "fine" });
  });
});

describe("createHttpFetch", () => {
  let server: http.Server;
  let base: string;
  let connections = 0;
  const closed: string[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const path = req.url ?? "/";
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        if (path === "/echo") {
          res.writeHead(200, { "content-type": "application/json", "x-seen-method": req.method ?? "" });
          res.end(JSON.stringify({ body, headers: req.headers }));
        } else if (path === "/gzip") {
          const data = zlib.gzipSync(Buffer.from("compressed hello"));
          res.writeHead(200, { "content-encoding": "gzip", "content-length": data.length });
          res.end(data);
        } else if (path === "/empty") {
          res.writeHead(204);
          res.end();
        } else if (path === "/slow") {
          res.writeHead(200, { "content-type": "text/plain" });
          res.write("first ");
          res.on("close", () => closed.push(req.headers["x-tag"] as string));
        } else if (path === "/cut") {
          res.writeHead(200, { "content-type": "text/plain", "content-length": "100" });
          res.write("first ", () => res.destroy());
        } else if (path === "/hang") {
          res.on("close", () => closed.push(req.headers["x-tag"] as string));
        } else {
          res.writeHead(404);
          res.end("nope");
        }
      });
    });
    server.on("connection", () => connections++);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await promisify(server.close.bind(server))();
  });

  function waitClosed(tag: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const started = Date.now();
      const check = () => {
        if (closed.includes(tag)) resolve();
        else if (Date.now() - started > 2_000) reject(new Error(`server never saw ${tag} close`));
        else setImmediate(check);
      };
      check();
    });
  }

  it("sends method, headers and body, and returns status, headers and body", async () => {
    const pool = createHttpFetch();
    try {
      const res = await pool.fetch(`${base}/echo`, {
        method: "post",
        headers: new Headers({ "content-type": "application/json", "x-one": "1" }),
        body: '{"a":"é"}',
      });
      expect(res.status).toBe(200);
      expect(res.ok).toBe(true);
      expect(res.headers.get("x-seen-method")).toBe("POST");
      const echoed = (await res.json()) as { body: string; headers: Record<string, string> };
      expect(echoed.body).toBe('{"a":"é"}');
      expect(echoed.headers["x-one"]).toBe("1");
      expect(echoed.headers["content-length"]).toBe(String(Buffer.byteLength('{"a":"é"}')));
      expect(res.url).toBe(`${base}/echo`);
    } finally {
      pool.close();
    }
  });

  it("keeps connections alive: sequential requests share one socket", async () => {
    const pool = createHttpFetch();
    try {
      const before = connections;
      for (let i = 0; i < 5; i++) await (await pool.fetch(`${base}/echo`, { method: "POST", body: `n=${i}` })).text();
      expect(connections - before).toBe(1);
    } finally {
      pool.close();
    }
  });

  it("frees the connection once a body has arrived, whether or not it was read", async () => {
    // A reader that stops at a body's last message without cancelling (the ollama SDK stops at
    // `done`) must not hold the connection: the socket pauses only when much waits unread.
    const pool = createHttpFetch();
    try {
      const before = connections;
      const unread = await pool.fetch(`${base}/echo`, { method: "POST", body: "never read" });
      expect(unread.status).toBe(200);
      // The pool frees a connection one event-loop turn after its response ended.
      for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
      expect(await (await pool.fetch(`${base}/echo`, { method: "POST", body: "next" })).json()).toMatchObject({ body: "next" });
      expect(connections - before).toBe(1);
    } finally {
      pool.close();
    }
  });

  it("opens no more than maxSocketsPerOrigin connections; the rest queue", async () => {
    const pool = createHttpFetch({ maxSocketsPerOrigin: 2 });
    try {
      const before = connections;
      await Promise.all(Array.from({ length: 8 }, async (_, i) => (await pool.fetch(`${base}/echo`, { method: "POST", body: `n=${i}` })).text()));
      expect(connections - before).toBe(2);
    } finally {
      pool.close();
    }
  });

  it("aborting mid-body errors the body with the signal's reason and closes the connection", async () => {
    const pool = createHttpFetch();
    try {
      const controller = new AbortController();
      const res = await pool.fetch(`${base}/slow`, { method: "POST", headers: { "x-tag": "mid-body" }, body: "", signal: controller.signal });
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      const first = await reader.read();
      expect(new TextDecoder().decode(first.value)).toBe("first ");
      const reason = new Error("stop now");
      controller.abort(reason);
      await expect(reader.read()).rejects.toBe(reason);
      await waitClosed("mid-body");
    } finally {
      pool.close();
    }
  });

  it("a body the server cuts short fails the read with a wire failure", async () => {
    const pool = createHttpFetch();
    try {
      const res = await pool.fetch(`${base}/cut`, { method: "POST", body: "" });
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      const first = await reader.read();
      expect(new TextDecoder().decode(first.value)).toBe("first ");
      const err: unknown = await reader.read().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isWireFailure(err)).toBe(true);
    } finally {
      pool.close();
    }
  });

  it("aborting before the response rejects with the signal's reason and closes the connection", async () => {
    const pool = createHttpFetch();
    try {
      const controller = new AbortController();
      const pending = pool.fetch(`${base}/hang`, { method: "POST", headers: { "x-tag": "before-headers" }, body: "x", signal: controller.signal });
      const reason = new Error("deadline");
      setTimeout(() => controller.abort(reason), 20);
      await expect(pending).rejects.toBe(reason);
      await waitClosed("before-headers");
      const already = new AbortController();
      already.abort();
      await expect(pool.fetch(`${base}/echo`, { signal: already.signal })).rejects.toMatchObject({ name: "AbortError" });
    } finally {
      pool.close();
    }
  });

  it("rejects like fetch (TypeError, cause kept) when the connection is refused", async () => {
    const pool = createHttpFetch();
    const spare = net.createServer();
    await new Promise<void>((resolve) => spare.listen(0, "127.0.0.1", resolve));
    const port = (spare.address() as net.AddressInfo).port;
    await promisify(spare.close.bind(spare))();
    try {
      const err = await pool.fetch(`http://127.0.0.1:${port}/`, { method: "POST", body: "x" }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TypeError);
      expect((err as TypeError).cause).toMatchObject({ code: "ECONNREFUSED" });
    } finally {
      pool.close();
    }
  });

  it("decodes a compressed body and gives a 204 a null body", async () => {
    const pool = createHttpFetch();
    try {
      expect(await (await pool.fetch(`${base}/gzip`)).text()).toBe("compressed hello");
      const empty = await pool.fetch(`${base}/empty`, { method: "POST", body: "" });
      expect(empty.status).toBe(204);
      expect(empty.body).toBeNull();
    } finally {
      pool.close();
    }
  });

  it("hands body kinds it does not send itself (streams) to the fallback", async () => {
    const seen: string[] = [];
    const fallback: FetchFunction = async (input) => {
      seen.push(String(input));
      return new Response("from fallback");
    };
    const pool = createHttpFetch({ fallback });
    try {
      const stream = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new Uint8Array([1]));
          c.close();
        },
      });
      const res = await pool.fetch(`${base}/echo`, { method: "POST", body: stream });
      expect(await res.text()).toBe("from fallback");
      expect(seen).toEqual([`${base}/echo`]);
    } finally {
      pool.close();
    }
  });
});

describe("webStream", () => {
  const text = (chunk: Uint8Array | undefined) => new TextDecoder().decode(chunk);

  it("passes the chunks on in order and closes at the end", async () => {
    const source = new PassThrough();
    const reader = webStream(source).getReader();
    source.write("one ");
    source.end("two");
    const seen: string[] = [];
    for (let r = await reader.read(); !r.done; r = await reader.read()) seen.push(text(r.value));
    expect(seen.join("")).toBe("one two");
  });

  it("pauses the source while a chunk waits unread, and resumes it on the next read", async () => {
    const source = new PassThrough();
    const reader = webStream(source).getReader();
    const pausedAfterFirst = new Promise<boolean>((resolve) => source.once("data", () => setImmediate(() => resolve(source.isPaused()))));
    source.write("a");
    source.write("b");
    expect(await pausedAfterFirst).toBe(true);
    expect(text((await reader.read()).value)).toBe("a");
    expect(text((await reader.read()).value)).toBe("b");
  });

  it("errors with the source's error, and with a TypeError when the source closes before its end", async () => {
    const failing = new PassThrough();
    const failed = webStream(failing).getReader();
    const boom = new Error("boom");
    failing.destroy(boom);
    await expect(failed.read()).rejects.toBe(boom);

    const cut = new PassThrough();
    const cutReader = webStream(cut).getReader();
    cut.destroy();
    await expect(cutReader.read()).rejects.toBeInstanceOf(TypeError);
  });

  it("destroys the source when the stream is cancelled", async () => {
    const source = new PassThrough();
    const reader = webStream(source).getReader();
    const closed = new Promise<void>((resolve) => source.once("close", resolve));
    await reader.cancel(new Error("not needed"));
    await closed;
    expect(source.destroyed).toBe(true);
  });
});
