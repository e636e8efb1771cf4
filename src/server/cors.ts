import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";

type Req = IncomingMessage | Http2ServerRequest;
type Res = ServerResponse | Http2ServerResponse;

/** Request headers Connect and gRPC-web send, plus ours. */
const ALLOWED_HEADERS = [
  "content-type",
  "connect-protocol-version",
  "connect-timeout-ms",
  "connect-content-encoding",
  "connect-accept-encoding",
  "grpc-timeout",
  "grpc-accept-encoding",
  "x-grpc-web",
  "x-user-agent",
  "authorization",
  "x-api-key",
  "x-request-id",
  "traceparent",
  "tracestate",
].join(", ");

/** Response headers a browser client must be able to read. */
const EXPOSED_HEADERS = [
  "grpc-status",
  "grpc-message",
  "grpc-status-details-bin",
  "grpc-encoding",
  "connect-content-encoding",
  "x-request-id",
  "x-client-request-id",
].join(", ");

/**
 * CORS for browsers using Connect or gRPC-web: the request's origin is echoed
 * only when it is in the allow-list; other origins get no CORS headers at all.
 * Returns true when it answered the request (a preflight).
 */
export function applyCors(allowed: ReadonlySet<string>, req: Req, res: Res): boolean {
  const origin = req.headers.origin;
  if (typeof origin !== "string" || !allowed.has(origin)) return false;
  res.setHeader("access-control-allow-origin", origin);
  res.setHeader("vary", "origin");
  res.setHeader("access-control-expose-headers", EXPOSED_HEADERS);
  if (req.method === "OPTIONS" && req.headers["access-control-request-method"] !== undefined) {
    res.setHeader("access-control-allow-methods", "POST, GET");
    res.setHeader("access-control-allow-headers", ALLOWED_HEADERS);
    res.setHeader("access-control-max-age", "7200");
    res.statusCode = 204;
    res.end();
    return true;
  }
  return false;
}
