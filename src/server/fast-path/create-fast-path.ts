/**
 * The hot path: gRPC and Connect calls (unary and server-streaming, POST) to one service,
 * served straight from node:http2 / node:http without connect-node's universal-handler plumbing
 * (async-iterable pipes, three header copies and two abort controllers per call), which the
 * profile showed to cost more than the gateway itself.
 *
 * It runs the same interceptors and the same ServiceImpl as connect-node, and writes the same
 * wire output (test/server/fast-path.test.ts compares them byte for byte): the protocol encodings are
 * ours (../wire/), but for the few connect internals ../wire/connect-internals.ts lists, and responses of
 * 1 KiB or more are compressed when the client accepts it, as connect-node does (response-compression.ts).
 * What it does not take (compressed requests, gRPC-web, Connect GET, JSON over gRPC,
 * HTTP/1.1 gRPC, other services such as health and reflection) is left to connect-node: the handler
 * returns false.
 */
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { DescService } from "@bufbuild/protobuf";
import type { Interceptor, ServiceImpl } from "@connectrpc/connect";
import type { NodeResponse } from "./node-http.js";
import { protocolOf } from "./protocol.js";
import { buildRoutes } from "./routes.js";
import { serveCall } from "./serve-call.js";

export interface FastPathOptions<S extends DescService> {
  service: S;
  impl: ServiceImpl<S>;
  /** Outermost first, as connect-node takes them. */
  interceptors: readonly Interceptor[];
  readMaxBytes: number;
  maxTimeoutMs: number;
  /** The id of a call refused before the interceptors gave it one (the server's, as requestIdInterceptor's). */
  newRequestId?: () => string;
}

/** Serves a call it can take (true) or leaves it alone (false); `served` counts the calls it took. */
export interface FastPath {
  (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): boolean;
  readonly served: number;
}

/**
 * Returns a handler that serves the calls it can and returns false for the rest. A call it takes
 * is answered in full, errors included; it never throws.
 */
export function createFastPath<S extends DescService>(options: FastPathOptions<S>): FastPath {
  const routes = buildRoutes(options.service, options.impl);
  const interceptors = [...options.interceptors];
  const limits = { readMaxBytes: options.readMaxBytes, maxTimeoutMs: options.maxTimeoutMs, newRequestId: options.newRequestId };

  let served = 0;
  const handle = (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): boolean => {
    if (req.method !== "POST" || req.url === undefined) return false;
    const route = routes.get(req.url);
    if (route === undefined) return false;
    const protocol = protocolOf(req);
    // Connect says unary or streaming in its content type, and connect-node refuses a mismatch (415).
    if (protocol === undefined || (protocol.name === "connect" && protocol.enveloped !== (route.kind !== "unary"))) return false;
    served++;
    void serveCall(route, protocol, req, res as unknown as NodeResponse, limits, interceptors);
    return true;
  };
  return Object.defineProperty(handle, "served", { get: () => served, enumerable: true }) as FastPath;
}
