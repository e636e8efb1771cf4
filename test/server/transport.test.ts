/**
 * The one-port transport's connection hygiene over real sockets: header and protocol deadlines,
 * HTTP/2 idle close and stream limit, the connection cap, and the graceful close of a drain.
 * A bare handler stands in for the service: these are properties of the transport alone.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import http2 from "node:http2";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { afterEach, describe, expect, it } from "vitest";
import { listen, type ConnectionLimits, type RequestHandler, type Transport } from "../../src/server/transport.js";

const LIMITS: ConnectionLimits = {
  protocolTimeoutMs: 10_000,
  headersTimeoutMs: 10_000,
  http2IdleTimeoutMs: 0,
  http2MaxConcurrentStreams: 100,
  maxConnections: 1000,
};

const ok: RequestHandler = (_req, res) => {
  res.setHeader("content-type", "text/plain");
  res.end("ok");
};

const open: { transport?: Transport; sockets: net.Socket[]; sessions: http2.ClientHttp2Session[] } = { sockets: [], sessions: [] };
afterEach(async () => {
  for (const s of open.sockets) s.destroy();
  for (const s of open.sessions) s.destroy();
  open.sockets = [];
  open.sessions = [];
  await open.transport?.destroy();
  open.transport = undefined;
});

async function start(limits: Partial<ConnectionLimits>, handler: RequestHandler = ok): Promise<Transport> {
  open.transport = await listen({ host: "127.0.0.1", port: 0, limits: { ...LIMITS, ...limits }, handler });
  return open.transport;
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () => resolve(socket));
    socket.once("error", reject);
    open.sockets.push(socket);
  });
}

function h2(port: number): http2.ClientHttp2Session {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on("error", () => undefined);
  open.sessions.push(session);
  return session;
}

/**
 * Writes `bytes` one at a time, `everyMs` apart, until they run out or the server closes the
 * connection. Resolves with how many were written before the close, what the server sent, and
 * whether it closed.
 */
function trickle(socket: net.Socket, bytes: Buffer, everyMs: number): Promise<{ written: number; received: string; closed: boolean }> {
  return new Promise((resolve) => {
    let written = 0;
    let received = "";
    socket.on("data", (chunk: Buffer) => (received += chunk.toString("latin1")));
    const finish = (closed: boolean) => {
      clearInterval(timer);
      resolve({ written, received, closed });
    };
    socket.once("close", () => finish(true));
    socket.on("error", () => undefined);
    const timer = setInterval(() => {
      if (socket.destroyed) return;
      if (written === bytes.length) return finish(false);
      socket.write(bytes.subarray(written, written + 1));
      written++;
    }, everyMs);
  });
}

function get(session: http2.ClientHttp2Session, path = "/"): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ":path": path });
    let status = 0;
    let body = "";
    stream.on("response", (headers) => (status = Number(headers[":status"])));
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => (body += chunk));
    stream.on("end", () => resolve({ status, body }));
    stream.on("error", reject);
    stream.end();
  });
}

describe("HTTP/1.1 header deadline", () => {
  it("answers 408 and closes a connection whose headers trickle in past the deadline", async () => {
    const transport = await start({ headersTimeoutMs: 300 });
    const socket = await connect(transport.port);
    // 80 header bytes, one every 40 ms: 3.2 s of trickle if nobody cuts it off.
    const request = Buffer.from(`GET / HTTP/1.1\r\nhost: x\r\nx-slow: ${"a".repeat(50)}\r\n\r\n`);
    const started = Date.now();
    const result = await trickle(socket, request, 40);
    expect(result.closed).toBe(true);
    expect(result.written).toBeLessThan(request.length);
    expect(result.received).toMatch(/^HTTP\/1\.1 408 /);
    // The deadline plus at most one check interval (a quarter of it), with slack for a loaded machine.
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it("serves a request whose headers arrive in time, and keeps the idle keep-alive connection open past the header deadline", async () => {
    const transport = await start({ headersTimeoutMs: 200 });
    const socket = await connect(transport.port);
    let received = "";
    const first = new Promise<void>((resolve) =>
      socket.on("data", (chunk: Buffer) => {
        received += chunk.toString("latin1");
        if (received.endsWith("\r\n\r\nok")) resolve();
      }),
    );
    socket.write("GET / HTTP/1.1\r\nhost: x\r\n\r\n");
    await first;
    expect(received).toMatch(/^HTTP\/1\.1 200 /);
    // Idle between requests is keep-alive's business, not the header deadline's: still open after 4 deadlines.
    const closed = new Promise<boolean>((resolve) => socket.once("close", () => resolve(true)));
    const stillOpen = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 800));
    expect(await Promise.race([closed, stillOpen])).toBe(false);
    // And the next request on it is timed from its own first byte, not from the last response.
    received = "";
    const second = new Promise<void>((resolve) => socket.on("data", () => received.endsWith("\r\n\r\nok") && resolve()));
    socket.write("GET / HTTP/1.1\r\nhost: x\r\n\r\n");
    await second;
    expect(received).toMatch(/^HTTP\/1\.1 200 /);
  });
});

describe("HTTP/1.1 header deadline over TLS", () => {
  it("answers 408 and closes a TLS connection whose headers trickle in past the deadline", async () => {
    const dir = mkdtempSync(join(tmpdir(), "llm-transport-tls-"));
    try {
      execFileSync("openssl", [
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"), "-days", "1", "-subj", "/CN=localhost",
      ], { stdio: "ignore" });
      open.transport = await listen({
        host: "127.0.0.1",
        port: 0,
        tls: { certFile: join(dir, "cert.pem"), keyFile: join(dir, "key.pem") },
        limits: { ...LIMITS, headersTimeoutMs: 300 },
        handler: ok,
      });
      const port = open.transport.port;
      const socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
        const s = tls.connect({ port, host: "127.0.0.1", rejectUnauthorized: false, ALPNProtocols: ["http/1.1"] }, () => resolve(s));
        s.once("error", reject);
      });
      open.sockets.push(socket);
      const request = Buffer.from(`GET / HTTP/1.1\r\nhost: x\r\nx-slow: ${"a".repeat(50)}\r\n\r\n`);
      const result = await trickle(socket, request, 40);
      expect(result.closed).toBe(true);
      expect(result.written).toBeLessThan(request.length);
      expect(result.received).toMatch(/^HTTP\/1\.1 408 /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("TLS handshake deadline", () => {
  it("closes a connection that trickles its ClientHello past the protocol deadline, though every byte comes sooner", async () => {
    const dir = mkdtempSync(join(tmpdir(), "llm-transport-tls-"));
    try {
      execFileSync("openssl", [
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"), "-days", "1", "-subj", "/CN=localhost",
      ], { stdio: "ignore" });
      // A real ClientHello, caught by a plain TCP server.
      const hello = await new Promise<Buffer>((resolve) => {
        const catcher = net.createServer((s) => s.once("data", (chunk: Buffer) => {
          resolve(chunk);
          s.destroy();
          catcher.close();
        }));
        catcher.listen(0, "127.0.0.1", () => {
          const client = tls.connect({ port: (catcher.address() as net.AddressInfo).port, host: "127.0.0.1", rejectUnauthorized: false });
          client.on("error", () => undefined);
        });
      });
      open.transport = await listen({
        host: "127.0.0.1",
        port: 0,
        tls: { certFile: join(dir, "cert.pem"), keyFile: join(dir, "key.pem") },
        limits: { ...LIMITS, protocolTimeoutMs: 300 },
        handler: ok,
      });
      const socket = await connect(open.transport.port);
      // 40 bytes, one every 60 ms: 2.4 s, each gap far inside the 300 ms deadline.
      const result = await trickle(socket, hello.subarray(0, 40), 60);
      expect(result.closed).toBe(true);
      expect(result.written).toBeLessThan(40);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("protocol sniff deadline", () => {
  it("closes a connection that trickles the HTTP/2 preface past the deadline, though every byte comes sooner", async () => {
    const transport = await start({ protocolTimeoutMs: 300 });
    const socket = await connect(transport.port);
    const preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    // One byte every 60 ms: 1.4 s for the preface, each gap far inside the 300 ms deadline.
    const result = await trickle(socket, preface, 60);
    expect(result.closed).toBe(true);
    expect(result.written).toBeLessThan(preface.length);
  });

  it("closes a connection that sends nothing", async () => {
    const transport = await start({ protocolTimeoutMs: 200 });
    const socket = await connect(transport.port);
    let bytes = 0;
    socket.on("data", (chunk: Buffer) => (bytes += chunk.length));
    await new Promise<void>((resolve) => socket.once("close", () => resolve()));
    expect(bytes).toBe(0);
  });
});

describe("HTTP/2 limits", () => {
  it("advertises SETTINGS_MAX_CONCURRENT_STREAMS and never runs more streams than that on one connection", async () => {
    let running = 0;
    let most = 0;
    const held: (() => void)[] = [];
    const transport = await start({ http2MaxConcurrentStreams: 3 }, (_req, res) => {
      running++;
      most = Math.max(most, running);
      held.push(() => {
        running--;
        res.end("ok");
      });
    });
    const session = h2(transport.port);
    const settings = await new Promise<http2.Settings>((resolve) => session.once("remoteSettings", resolve));
    expect(settings.maxConcurrentStreams).toBe(3);
    const calls = Array.from({ length: 8 }, () => get(session));
    // Release whatever the server holds, one at a time, until every call is answered (bounded).
    let answered = 0;
    void Promise.all(calls).then(() => (answered = calls.length));
    for (let round = 0; round < 200 && answered < calls.length; round++) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      held.shift()?.();
    }
    const results = await Promise.all(calls);
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(most).toBe(3);
  });

  it("refuses streams past the limit (REFUSED_STREAM) from a client that opens them before reading SETTINGS", async () => {
    let running = 0;
    let most = 0;
    const held: (() => void)[] = [];
    const transport = await start({ http2MaxConcurrentStreams: 3 }, (_req, res) => {
      running++;
      most = Math.max(most, running);
      held.push(() => {
        running--;
        res.end("ok");
      });
    });
    // peerMaxConcurrentStreams: what the client assumes until the server's SETTINGS arrive.
    const session = http2.connect(`http://127.0.0.1:${transport.port}`, { peerMaxConcurrentStreams: 1000 });
    session.on("error", () => undefined);
    open.sessions.push(session);
    const outcomes = Array.from(
      { length: 10 },
      () =>
        new Promise<string>((resolve) => {
          const stream = session.request({ ":path": "/" });
          stream.resume();
          stream.on("end", () => resolve("ok"));
          stream.on("error", () => resolve(stream.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM ? "refused" : `rst ${stream.rstCode}`));
          stream.end();
        }),
    );
    let settled = 0;
    for (const o of outcomes) void o.then(() => settled++);
    // Answer the held streams once the refusals are in (bounded).
    for (let round = 0; round < 500 && settled < 7; round++) await new Promise<void>((resolve) => setImmediate(resolve));
    for (const release of held.splice(0)) release();
    const results = await Promise.all(outcomes);
    expect(results.filter((r) => r === "ok")).toHaveLength(3);
    expect(results.filter((r) => r === "refused")).toHaveLength(7);
    expect(most).toBe(3);
  });

  it("closes a connection left without streams past the idle timeout with GOAWAY, but not one with a stream open", async () => {
    let release: () => void = () => undefined;
    const transport = await start({ http2IdleTimeoutMs: 300 }, (req, res) => {
      if (req.url === "/slow") release = () => res.end("slow");
      else res.end("ok");
    });
    const session = h2(transport.port);
    const goaway = new Promise<number>((resolve) => session.once("goaway", (code: number) => resolve(code)));
    const slow = get(session, "/slow");
    // The stream stays open for three idle timeouts: the connection must not be closed meanwhile.
    const early = await Promise.race([goaway.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 900))]);
    expect(early).toBe(false);
    release();
    expect((await slow).body).toBe("slow");
    const startedIdle = Date.now();
    expect(await goaway).toBe(http2.constants.NGHTTP2_NO_ERROR);
    expect(Date.now() - startedIdle).toBeGreaterThanOrEqual(250);
    await new Promise<void>((resolve) => (session.closed ? resolve() : session.once("close", () => resolve())));
  });
});

describe("connection cap", () => {
  it("closes connections past maxConnections on accept, and takes new ones once below it", async () => {
    const transport = await start({ maxConnections: 2 });
    const a = h2(transport.port);
    const b = h2(transport.port);
    expect((await get(a)).body).toBe("ok");
    expect((await get(b)).body).toBe("ok");
    expect(transport.connections).toBe(2);
    // The third is accepted by the kernel, then closed without a byte.
    const third = await connect(transport.port);
    let bytes = 0;
    third.on("data", (chunk: Buffer) => (bytes += chunk.length));
    await new Promise<void>((resolve) => third.once("close", () => resolve()));
    expect(bytes).toBe(0);
    a.close();
    await new Promise<void>((resolve) => a.once("close", () => resolve()));
    // The server sees the close a moment after the client: wait for it, bounded.
    for (let i = 0; i < 100 && transport.connections > 1; i++) await new Promise<void>((resolve) => setTimeout(resolve, 10));
    expect((await get(h2(transport.port))).body).toBe("ok");
  });
});

describe("graceful close (the drain)", () => {
  it("lets a stream in flight finish with its trailers after GOAWAY, closes idle HTTP/1.1, and closed() resolves once the clients closed", async () => {
    let release: () => void = () => undefined;
    let responded: () => void = () => undefined;
    const responding = new Promise<void>((resolve) => (responded = resolve));
    const transport = await start({}, (req, res) => {
      if (req.httpVersionMajor !== 2) return void res.end("done");
      const h2res = res as http2.Http2ServerResponse;
      h2res.writeHead(200);
      release = () => {
        h2res.addTrailers({ "grpc-status": "0" });
        h2res.end("done");
      };
      responded();
    });
    const session = h2(transport.port);
    const goaway = new Promise<void>((resolve) => session.once("goaway", () => resolve()));
    const stream = session.request({ ":path": "/" });
    stream.end();
    const trailers = new Promise<http2.IncomingHttpHeaders>((resolve) => stream.once("trailers", resolve));
    stream.resume();
    await responding;
    // An HTTP/1.1 keep-alive connection, idle after its response.
    const h1 = await connect(transport.port);
    const h1Closed = new Promise<void>((resolve) => h1.once("close", () => resolve()));
    await new Promise<void>((resolve) => {
      let text = "";
      h1.on("data", (chunk: Buffer) => (text += chunk.toString("latin1")) && text.endsWith("done") && resolve());
      h1.write("GET / HTTP/1.1\r\nhost: x\r\n\r\n");
    });

    transport.stopAccepting();
    await goaway;
    await h1Closed;
    const closed = transport.closed(5000);
    release();
    expect((await trailers)["grpc-status"]).toBe("0");
    expect(await closed).toBe(true);
    expect(transport.connections).toBe(0);
  });
});
