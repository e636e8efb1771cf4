import { readFileSync } from "node:fs";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";

export type RequestHandler = (
  req: IncomingMessage | Http2ServerRequest,
  res: ServerResponse | Http2ServerResponse,
) => void;

export interface TransportOptions {
  host: string;
  port: number;
  tls?: { certFile: string; keyFile: string };
  handler: RequestHandler;
}

export interface Transport {
  /** The bound address (port 0 resolves to the real port). */
  readonly port: number;
  readonly host: string;
  /** Stops accepting, sends GOAWAY to HTTP/2 sessions, closes idle HTTP/1.1 connections. */
  stopAccepting(): void;
  /** Destroys whatever connections remain. */
  destroy(): Promise<void>;
}

const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const FIRST_BYTES_TIMEOUT_MS = 10_000;

/**
 * One port for every protocol. In cleartext, a plain net server reads a
 * connection's first bytes: the HTTP/2 client preface goes to an http2 server
 * (gRPC, Connect and gRPC-web over h2c), anything else to an http server
 * (Connect and gRPC-web over HTTP/1.1). With TLS, ALPN does the same job.
 */
export async function listen(options: TransportOptions): Promise<Transport> {
  const sessions = new Set<http2.ServerHttp2Session>();
  const sockets = new Set<net.Socket>();
  const trackSession = (session: http2.ServerHttp2Session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  };

  let front: net.Server;
  let h1: http.Server | undefined;
  if (options.tls) {
    const secure = http2.createSecureServer(
      {
        cert: readFileSync(options.tls.certFile),
        key: readFileSync(options.tls.keyFile),
        allowHTTP1: true,
        noDelay: true,
      },
      options.handler,
    );
    secure.on("session", trackSession);
    front = secure;
  } else {
    const h2 = http2.createServer({}, options.handler);
    h2.on("session", trackSession);
    h1 = http.createServer(options.handler);
    h1.keepAliveTimeout = 65_000;
    const h1Server = h1;
    // TCP_NODELAY: a gRPC response is three writes (headers, message, trailers); with Nagle the
    // later ones wait for the client's delayed ACK, adding milliseconds to every call.
    front = net.createServer({ noDelay: true }, (socket) => {
      let head = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        head = Buffer.concat([head, chunk]);
        const n = Math.min(head.length, H2_PREFACE.length);
        const isH2 = head.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
        if (isH2 && head.length < H2_PREFACE.length) return; // wait for the rest of the preface
        socket.off("data", onData);
        socket.setTimeout(0);
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
      // A connection that never says which protocol it speaks is closed (the HTTP servers' own timeouts start later).
      socket.setTimeout(FIRST_BYTES_TIMEOUT_MS, () => {
        if (head.length < H2_PREFACE.length && socket.listenerCount("data") > 0) socket.destroy();
      });
    });
  }
  front.on("connection", (socket: net.Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
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
    stopAccepting() {
      front.close();
      for (const session of sessions) session.close();
      h1?.closeIdleConnections();
    },
    async destroy() {
      for (const session of sessions) session.destroy();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => (front.listening ? front.close(() => resolve()) : resolve()));
    },
  };
}
