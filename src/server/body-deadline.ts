/**
 * A call's deadline runs from the moment its headers arrive. Both serving paths (connect-node and
 * the direct path) read the whole request body before their deadline-aware work starts, so a
 * client that sent headers and then stalled the body, or never half-closed, got no answer at all.
 * This guard answers such a call at its deadline, in the call's own protocol, and closes it.
 */
import http2 from "node:http2";
import { ServerResponse, type IncomingMessage } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import type { ConnectError } from "@connectrpc/connect";
import { codeToHttpStatus, errorJsonBytes } from "./wire/connect-errors.js";
import { errorToJson } from "./wire/connect-internals.js";
import { setGrpcStatus } from "./wire/grpc-status.js";
import { parseConnectTimeout, parseGrpcTimeout } from "./wire/timeout-header.js";
import { LlmError } from "../errors/llm-error.js";
import { toConnectError } from "../rpc/to-connect.js";

type Wire = "grpc" | "grpc-web" | "connect" | "connect-stream";

export interface BodyDeadlineOptions {
  /** The deadline of a call that sends none (DEFAULT_DEADLINE_MS). */
  defaultTimeoutMs: number;
  /** The largest deadline a call may send (MAX_DEADLINE_MS); a larger one is refused by the serving path. */
  maxTimeoutMs: number;
}

/** After answering an HTTP/1.1 call whose body is still arriving, how long its connection may linger before it is destroyed. */
const LINGER_MS = 2000;

function wireOf(contentType: string | undefined): Wire | undefined {
  if (contentType === undefined) return undefined;
  if (contentType.startsWith("application/grpc-web")) return "grpc-web";
  if (contentType.startsWith("application/grpc")) return "grpc";
  if (contentType.startsWith("application/connect+")) return "connect-stream";
  if (contentType.startsWith("application/json") || contentType.startsWith("application/proto")) return "connect";
  return undefined;
}

function header(req: IncomingMessage | Http2ServerRequest, name: string): string | null {
  const value = req.headers[name];
  return (Array.isArray(value) ? value[0] : value) ?? null;
}

/** The call's deadline: the one it sent, or the default (also when it sent a bad one, which the serving path refuses itself). */
function timeoutOf(req: IncomingMessage | Http2ServerRequest, wire: Wire, options: BodyDeadlineOptions): number {
  const parsed =
    wire === "grpc" || wire === "grpc-web"
      ? parseGrpcTimeout(header(req, "grpc-timeout"), options.maxTimeoutMs)
      : parseConnectTimeout(header(req, "connect-timeout-ms"), options.maxTimeoutMs);
  return parsed.error === undefined && parsed.timeoutMs !== undefined ? parsed.timeoutMs : options.defaultTimeoutMs;
}

/**
 * Arms the call's deadline as its headers arrive; disarmed once the request body has ended (the
 * serving path's own deadline takes over from there) or the response closed. At the deadline,
 * with the body still arriving: DEADLINE_EXCEEDED in the protocol's own form (grpc-status 4 for
 * gRPC and gRPC-web, a Connect error otherwise) if nothing was answered yet, then the stream is
 * closed (RST_STREAM NO_ERROR after the response) or, over HTTP/1.1, the connection.
 */
export function guardBodyDeadline(
  req: IncomingMessage | Http2ServerRequest,
  res: ServerResponse | Http2ServerResponse,
  options: BodyDeadlineOptions,
): void {
  if (req.method !== "POST" || req.complete) return;
  const wire = wireOf(req.headers["content-type"]);
  if (wire === undefined) return;
  const timer = setTimeout(() => expire(req, res, wire), Math.max(0, timeoutOf(req, wire, options)));
  const disarm = () => clearTimeout(timer);
  req.once("end", disarm);
  res.once("close", disarm);
}

function expire(req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse, wire: Wire): void {
  if (req.complete) return;
  // "Deadline spent" is PROVIDER_TIMEOUT in the taxonomy (DEADLINE_EXCEEDED), as for a single-flight wait; the message says which.
  const error = toConnectError(new LlmError("PROVIDER_TIMEOUT", "the deadline passed before the request arrived in full"));
  if (!res.headersSent && !res.writableEnded) answer(res, wire, req.headers["content-type"] ?? "", error);
  if (req.httpVersionMajor === 2) {
    // After the response (NO_ERROR waits for it to be written), RST_STREAM tells the client to stop sending.
    const stream = (req as Http2ServerRequest).stream;
    if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_NO_ERROR);
    return;
  }
  const socket = req.socket;
  if (res.writableEnded) socket.end();
  else socket.destroy();
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
}

/** Sets headers one by one and ends: with no body, an HTTP/2 response is then a single HEADERS frame with END_STREAM (gRPC trailers-only). */
function answer(res: ServerResponse | Http2ServerResponse, wire: Wire, contentType: string, error: ConnectError): void {
  const out = res as ServerResponse; // the members used here exist on both, with these signatures
  if (res instanceof ServerResponse) res.shouldKeepAlive = false; // HTTP/1.1: "connection: close"
  if (wire === "grpc" || wire === "grpc-web") {
    const status = new Headers();
    setGrpcStatus(status, error);
    out.statusCode = 200;
    out.setHeader("content-type", contentType);
    status.forEach((value, key) => out.setHeader(key, value));
    out.end();
    return;
  }
  if (wire === "connect-stream") {
    const json = Buffer.from(JSON.stringify({ error: errorToJson(error, undefined) }));
    const body = Buffer.alloc(5 + json.length);
    body[0] = 0b10; // end-of-stream message
    body.writeUInt32BE(json.length, 1);
    body.set(json, 5);
    out.statusCode = 200;
    out.setHeader("content-type", contentType);
    out.end(body);
    return;
  }
  out.statusCode = codeToHttpStatus(error.code);
  out.setHeader("content-type", "application/json");
  out.end(errorJsonBytes(error));
}
