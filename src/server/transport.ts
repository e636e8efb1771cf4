import { readFileSync } from "node:fs";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { closeWhenIdle } from "./http2-idle.js";

export type RequestHandler = (
  req: IncomingMessage | Http2ServerRequest,
  res: ServerResponse | Http2ServerResponse,
) => void;

/** What one client, or many, may hold of the server (README "Connection timeouts and limits"). */
export interface ConnectionLimits {
  /** A new connection must show its protocol within this time of being accepted: the HTTP/2 preface or an HTTP/1.1 request's first bytes (the TLS handshake, with TLS). */
  protocolTimeoutMs: number;
  /** An HTTP/1.1 request's headers must be complete within this time of its first byte; past it, 408 and the connection is closed. */
  headersTimeoutMs: number;
  /** An HTTP/2 connection without an open stream for this long is closed (GOAWAY); 0 never. */
  http2IdleTimeoutMs: number;
  /** SETTINGS_MAX_CONCURRENT_STREAMS sent to every HTTP/2 client; streams past it are refused (REFUSED_STREAM). */
  http2MaxConcurrentStreams: number;
  /** Connections open at once; new ones past it are closed on accept. */
  maxConnections: number;
}

export interface TransportOptions {
  host: string;
  port: number;
  tls?: { certFile: string; keyFile: string };
  limits: ConnectionLimits;
  handler: RequestHandler;
  /** A connection was refused because maxConnections were open. */
  onConnectionRefused?: () => void;
}

export interface Transport {
  /** The bound address (port 0 resolves to the real port). */
  readonly port: number;
  readonly host: string;
  /** Open connections, whatever their protocol. */
  readonly connections: number;
  /**
   * Stops accepting: closes the listening socket, sends GOAWAY (last stream id, NO_ERROR) to
   * HTTP/2 sessions, which then close once their streams have, closes idle HTTP/1.1 connections
   * and the others after their response in progress, and drops connections not yet sniffed.
   */
  stopAccepting(): void;
  /**
   * Resolves true once every connection has closed (the client read its last response and
   * closed too), false when timeoutMs passed first.
   */
  closed(timeoutMs: number): Promise<boolean>;
  /** Destroys whatever connections remain. */
  destroy(): Promise<void>;
}

const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/** How often Node's http server checks HTTP/1.1 header deadlines: often enough that one is not overrun by more than a second. */
function checkingIntervalMs(headersTimeoutMs: number): number {
  return Math.max(10, Math.min(1000, Math.floor(headersTimeoutMs / 4)));
}

/**
 * One port for every protocol. In cleartext, a plain net server reads a
 * connection's first bytes: the HTTP/2 client preface goes to an http2 server
 * (gRPC, Connect and gRPC-web over h2c), anything else to an http server
 * (Connect and gRPC-web over HTTP/1.1). With TLS, ALPN does the same job.
 */
export async function listen(options: TransportOptions): Promise<Transport> {
  const { limits } = options;
  const sessions = new Set<http2.ServerHttp2Session>();
  const sockets = new Set<net.Socket>();
  /** Sockets accepted but not yet handed to an HTTP server. */
  const sniffing = new Set<net.Socket>();
  let draining = false;
  const closeWaiters = new Set<() => void>();
  const trackSession = (session: http2.ServerHttp2Session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
    if (draining) session.close();
    else if (limits.http2IdleTimeoutMs > 0) closeWhenIdle(session, limits.http2IdleTimeoutMs);
  };
  const h2Settings: http2.Settings = { maxConcurrentStreams: limits.http2MaxConcurrentStreams };

  let front: net.Server;
  let h1: http.Server | undefined;
  /** Closes the HTTP/1.1 connections that are idle (Node's http server tracks them). */
  let closeIdleH1: () => void;
  // While draining, an HTTP/1.1 response ends its connection: no keep-alive past the drain.
  const endKeepAliveWhileDraining = (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => {
    if (req.httpVersionMajor !== 1) return;
    if (draining) (res as ServerResponse).shouldKeepAlive = false;
    else res.once("finish", () => draining && req.socket.end());
  };
  if (options.tls) {
    const secure = http2.createSecureServer(
      {
        cert: readFileSync(options.tls.certFile),
        key: readFileSync(options.tls.keyFile),
        allowHTTP1: true,
        noDelay: true,
        settings: h2Settings,
        handshakeTimeout: limits.protocolTimeoutMs,
      },
      options.handler,
    );
    // With allowHTTP1 the secure server checks HTTP/1.1 header deadlines itself (it does listen()),
    // reading these two properties, which @types/node does not declare on Http2SecureServer.
    Object.assign(secure, { headersTimeout: limits.headersTimeoutMs, connectionsCheckingInterval: checkingIntervalMs(limits.headersTimeoutMs) });
    secure.on("session", trackSession);
    secure.prependListener("request", endKeepAliveWhileDraining);
    // Declared by http.Server, present on Http2SecureServer with allowHTTP1 too (not in @types/node).
    const secureH1 = secure as unknown as Pick<http.Server, "closeIdleConnections">;
    closeIdleH1 = () => secureH1.closeIdleConnections();
    front = secure;
  } else {
    const h2 = http2.createServer({ settings: h2Settings }, options.handler);
    h2.on("session", trackSession);
    h1 = http.createServer(
      {
        headersTimeout: limits.headersTimeoutMs,
        requestTimeout: Math.max(300_000, limits.headersTimeoutMs),
        connectionsCheckingInterval: checkingIntervalMs(limits.headersTimeoutMs),
        keepAliveTimeout: 65_000,
      },
      options.handler,
    );
    // Node's http server tracks its connections (header and request deadlines, closeIdleConnections)
    // from its "listening" event, which a server that is handed sockets and never calls listen()
    // does not get: without this a client sending a header byte every few seconds held a
    // connection forever. Checked by test/server/transport.test.ts.
    h1.emit("listening");
    const h1Server = h1;
    h1.prependListener("request", endKeepAliveWhileDraining);
    closeIdleH1 = () => h1Server.closeIdleConnections();
    // TCP_NODELAY: a gRPC response is three writes (headers, message, trailers); with Nagle the
    // later ones wait for the client's delayed ACK, adding milliseconds to every call.
    front = net.createServer({ noDelay: true }, (socket) => {
      let head = Buffer.alloc(0);
      sniffing.add(socket);
      // A total deadline from accept (not an idle timer, which each trickled byte would restart).
      const deadline = setTimeout(() => socket.destroy(), limits.protocolTimeoutMs);
      const onData = (chunk: Buffer) => {
        head = Buffer.concat([head, chunk]);
        const n = Math.min(head.length, H2_PREFACE.length);
        const isH2 = head.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
        if (isH2 && head.length < H2_PREFACE.length) return; // wait for the rest of the preface
        socket.off("data", onData);
        clearTimeout(deadline);
        sniffing.delete(socket);
        socket.pause();
        socket.unshift(head);
        if (isH2) {
          // The http2 session reads what is buffered on the paused socket, then consumes its handle.
          h2.emit("connection", socket);
        } else {
          h1Server.emit("connection", socket);
          socket.resume();
        }
      };
      socket.on("data", onData);
      socket.on("error", () => socket.destroy());
      socket.once("close", () => {
        clearTimeout(deadline);
        sniffing.delete(socket);
      });
    });
  }
  front.maxConnections = limits.maxConnections;
  front.on("drop", () => options.onConnectionRefused?.());
  front.on("connection", (socket: net.Socket) => {
    sockets.add(socket);
    socket.once("close", () => {
      sockets.delete(socket);
      if (sockets.size === 0) for (const done of [...closeWaiters]) done();
    });
  });

  await new Promise<void>((resolve, reject) => {
    front.once("error", reject);
    front.listen(options.port, options.host, () => {
      front.off("error", reject);
      resolve();
    });
  });
  const address = front.address() as net.AddressInfo;

  return {
    port: address.port,
    host: options.host,
    get connections() {
      return sockets.size;
    },
    stopAccepting() {
      draining = true;
      front.close();
      for (const session of sessions) session.close();
      for (const socket of sniffing) socket.destroy();
      closeIdleH1();
    },
    closed(timeoutMs) {
      if (sockets.size === 0) return Promise.resolve(true);
      return new Promise((resolve) => {
        const done = () => {
          clearTimeout(timer);
          closeWaiters.delete(done);
          resolve(sockets.size === 0);
        };
        const timer = setTimeout(done, timeoutMs);
        closeWaiters.add(done);
      });
    },
    async destroy() {
      for (const session of sessions) session.destroy();
      for (const socket of sockets) socket.destroy();
      h1?.close(); // stops its header-deadline checks
      await new Promise<void>((resolve) => (front.listening ? front.close(() => resolve()) : resolve()));
    },
  };
}
