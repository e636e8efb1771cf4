/**
 * connect-node's adapter, with what its own cannot do: protocol-level errors (raised before any
 * interceptor runs) get ErrorInfo and x-request-id, an unsupported content type gets a described
 * error rather than a bare 415, and gRPC-web text mode is served (grpc-web-text.ts). It is
 * connectNodeAdapter's few lines (router, path table, universal request/response) with a request
 * gate and a response step added.
 */
import { Code, ConnectError, createConnectRouter, type ConnectRouter, type HandlerContext, type Interceptor } from "@connectrpc/connect";
import { universalRequestFromNodeRequest, universalResponseToNodeResponse } from "@connectrpc/connect-node";
import { createAsyncIterable, type UniversalHandler, type UniversalServerResponse } from "@connectrpc/connect/protocol";
import { errorJsonBytes } from "./wire/connect-errors.js";
import { mergeNonProtocolHeaders } from "./wire/connect-internals.js";
import { setGrpcStatus } from "./wire/grpc-status.js";
import { parseConnectTimeout, parseGrpcTimeout } from "./wire/timeout-header.js";
import { kRequestId } from "./call-values.js";
import { binaryRequest, isGrpcWebText, textResponse } from "./grpc-web-text.js";
import type { RequestHandler } from "./transport.js";
import { describeProtocolError, hasErrorInfo, newProtocolRequestId } from "./protocol-errors.js";
import { RESPONSE_COMPRESSIONS } from "./response-compression.js";

export interface RpcAdapterOptions {
  routes: (router: ConnectRouter) => void;
  /** Outermost first. */
  interceptors: Interceptor[];
  readMaxBytes: number;
  maxTimeoutMs: number;
  /** The id of a call refused before the interceptors gave it one (the server's, as requestIdInterceptor's). */
  newRequestId?: () => string;
  /** A handler that failed outside the protocol (connect-node prints these to stderr). */
  onHandlerError: (method: string, err: unknown) => void;
}

/** The request id a protocol error reports: the one the call already has, else a new one of the server's. */
function requestIdOf(context: HandlerContext, newRequestId: () => string): string {
  return context.responseHeader.get("x-request-id") || context.values.get(kRequestId) || newRequestId();
}

const ACCEPT_ENCODING_HEADERS = ["grpc-accept-encoding", "accept-encoding", "connect-accept-encoding"];

/**
 * Runs before the body is read, for every call of every protocol. connect aborts the call's context
 * with the error it is about to serialize, so a listener on that signal can describe the error first.
 */
function protocolErrorGate(options: Pick<RpcAdapterOptions, "readMaxBytes" | "maxTimeoutMs" | "newRequestId">) {
  return (context: HandlerContext): void => {
    const onAbort = () => {
      const error: unknown = context.signal.reason;
      if (!(error instanceof ConnectError)) return;
      // An unsupported compression's answer lists the supported ones in a header connect then drops as a
      // protocol header (grpc-accept-encoding, accept-encoding, connect-accept-encoding): send it.
      for (const name of ACCEPT_ENCODING_HEADERS) {
        const value = error.metadata.get(name);
        if (value !== null && !context.responseHeader.has(name)) context.responseHeader.set(name, value);
      }
      if (hasErrorInfo(error)) return;
      const timeoutHeader = context.protocolName === "connect" ? "connect-timeout-ms" : "grpc-timeout";
      const timeoutValue = context.requestHeader.get(timeoutHeader);
      const timeout = context.protocolName === "connect" ? parseConnectTimeout(timeoutValue, options.maxTimeoutMs) : parseGrpcTimeout(timeoutValue, options.maxTimeoutMs);
      describeProtocolError(error, {
        requestId: requestIdOf(context, options.newRequestId ?? newProtocolRequestId),
        callerRequestId: context.requestHeader.get("x-request-id"),
        responseHeader: context.responseHeader,
        readMaxBytes: options.readMaxBytes,
        ...(timeout.error !== undefined && timeout.error.rawMessage === error.rawMessage ? { timeoutHeader } : {}),
      });
    };
    if (context.signal.aborted) onAbort();
    else context.signal.addEventListener("abort", onAbort, { once: true });
  };
}

const UNARY_TYPES = ["application/json", "application/proto"];
const STREAM_TYPES = ["application/connect+json", "application/connect+proto"];
const GRPC_TYPES = [
  "application/grpc",
  "application/grpc+proto",
  "application/grpc+json",
  "application/grpc-web",
  "application/grpc-web+proto",
  "application/grpc-web+json",
  "application/grpc-web-text",
  "application/grpc-web-text+proto",
];

/**
 * The answer to a content type no protocol of the method takes: still 415 (with accept-post listing
 * what it takes, as connect-go does), now with a Connect error body, x-request-id, and for a gRPC-like
 * type the status in the headers too (trailers-only form), each carrying ErrorInfo UNSUPPORTED_PROTOCOL.
 */
function unsupportedMediaType(handler: UniversalHandler, contentType: string | null, requestId: string, callerRequestId: string | null): UniversalServerResponse {
  const shown = contentType === null || contentType === "" ? "none" : JSON.stringify(contentType.slice(0, 100));
  const accepted = [...(handler.method.methodKind === "unary" ? UNARY_TYPES : STREAM_TYPES), ...GRPC_TYPES];
  const error = describeProtocolError(
    new ConnectError(`unsupported content type ${shown}; this method takes ${accepted.join(", ")}`, Code.Unimplemented),
    { requestId, callerRequestId },
  );
  const header = new Headers({ "content-type": "application/json", "accept-post": accepted.join(", ") });
  if (contentType?.toLowerCase().startsWith("application/grpc")) setGrpcStatus(header, error);
  else mergeNonProtocolHeaders(header, error.metadata);
  const body = errorJsonBytes(error);
  header.set("content-length", String(body.byteLength));
  return { status: 415, header, body: createAsyncIterable([body]) };
}

export function createRpcAdapter(options: RpcAdapterOptions): RequestHandler {
  const router = createConnectRouter({
    interceptors: options.interceptors,
    readMaxBytes: options.readMaxBytes,
    maxTimeoutMs: options.maxTimeoutMs,
    // The direct path compresses responses with the same list, in the same order.
    acceptCompression: [...RESPONSE_COMPRESSIONS],
    requestGate: protocolErrorGate(options),
  });
  options.routes(router);
  const newRequestId = options.newRequestId ?? newProtocolRequestId;
  const paths = new Map<string, UniversalHandler>();
  for (const handler of router.handlers) paths.set(handler.requestPath, handler);

  return (req, res) => {
    const handler = paths.get(req.url?.split("?", 2)[0] ?? "");
    if (handler === undefined) {
      res.statusCode = 404;
      res.end();
      return;
    }
    const uReq = universalRequestFromNodeRequest(req, res, undefined, undefined);
    // gRPC-web text mode is served as binary gRPC-web, base64 decoded on the way in and encoded on the way out.
    const text = isGrpcWebText(uReq.header.get("content-type"));
    handler(text ? binaryRequest(uReq) : uReq)
      .then((uRes) => {
        if (uRes.status === 415) return unsupportedMediaType(handler, uReq.header.get("content-type"), newRequestId(), uReq.header.get("x-request-id"));
        return text ? textResponse(uRes) : uRes;
      })
      .then((uRes) => universalResponseToNodeResponse(uRes, res))
      .catch((reason: unknown) => {
        if (ConnectError.from(reason).code === Code.Aborted) return;
        options.onHandlerError(`${handler.service.typeName}/${handler.method.name}`, reason);
      });
  };
}
