/**
 * One call on the fast path, from headers to the last byte: its deadline, its body, the interceptors and
 * the handler, then the protocol's writer. It never throws: every failure is answered on the wire.
 */
import { Code, ConnectError, createContextValues, type HandlerContext, type Interceptor, type StreamResponse, type UnaryResponse } from "@connectrpc/connect";
import { deadlineSignal } from "../../core/deadline-signal.js";
import { describeProtocolError, hasErrorInfo, newProtocolRequestId } from "../protocol-errors.js";
import { responseCompression } from "../response-compression.js";
import { parseConnectTimeout, parseGrpcTimeout } from "../wire/timeout-header.js";
import { decodeSingleEnvelope } from "./envelope.js";
import { writeError } from "./error-writer.js";
import { writeConnectStream } from "./connect-stream-writer.js";
import { writeGrpcStream } from "./grpc-stream-writer.js";
import { applyInterceptors, asConnectError, normalize, single } from "./interceptor-chain.js";
import { copyHeaders, firstHeader, webHeaders, type NodeRequest, type NodeResponse } from "./node-http.js";
import { protocolHeaders, type Protocol } from "./protocol.js";
import { readBody } from "./request-body.js";
import type { Route } from "./routes.js";
import { writeConnectUnary, writeGrpcUnary } from "./unary-writers.js";

/** What a call needs of the fast path's options. */
export interface CallLimits {
  readMaxBytes: number;
  maxTimeoutMs: number;
  newRequestId?: (() => string) | undefined;
}

export async function serveCall(route: Route, protocol: Protocol, req: NodeRequest, res: NodeResponse, limits: CallLimits, interceptors: readonly Interceptor[]): Promise<void> {
  const grpc = protocol.name === "grpc";
  const names = protocolHeaders(protocol);
  const timeout = (grpc ? parseGrpcTimeout : parseConnectTimeout)(firstHeader(req.headers[names.timeout]), limits.maxTimeoutMs);
  const responseHeader = new Headers({ "content-type": names.contentType });
  // Response compression as connect-node negotiates it; an enveloped response announces it up front, as connect-node's does.
  const compression = responseCompression(firstHeader(req.headers[names.acceptEncoding]));
  if (names.announceEncoding !== undefined && compression !== null) responseHeader.set(names.announceEncoding, compression.name);
  const responseTrailer = new Headers();

  // One controller: aborted at the client's deadline, or when the client goes away first. It is
  // never aborted after a call ends normally (that would only build a DOMException nobody reads).
  let settled = false;
  const deadlineAt = timeout.timeoutMs === undefined ? undefined : Date.now() + timeout.timeoutMs;
  const deadline = deadlineSignal({
    ...(timeout.timeoutMs !== undefined && timeout.error === undefined ? { timeoutMs: timeout.timeoutMs } : {}),
    expired: () => new ConnectError("the operation timed out", Code.DeadlineExceeded),
  });
  const onClose = () => {
    if (!settled) deadline.abort(new ConnectError("the client closed the call", Code.Canceled));
  };
  res.once("close", onClose);
  const settle = () => {
    settled = true;
    deadline.dispose();
    res.off("close", onClose);
  };

  try {
    if (timeout.error) throw timeout.error;
    const kind = route.kind === "unary" ? "unary" : "server-streaming";
    const body = await readBody(req, limits.readMaxBytes, protocol.enveloped ? kind : undefined);
    const bytes = protocol.enveloped ? decodeSingleEnvelope(body, kind, !grpc) : body;
    const input = route.codecs.input(protocol.binary).parse(bytes);
    const requestHeader = webHeaders(req);
    const context: HandlerContext = {
      method: route.method,
      service: route.method.parent,
      signal: deadline.signal,
      timeoutMs: deadlineAt === undefined ? () => undefined : () => deadlineAt - Date.now(),
      requestMethod: "POST",
      requestHeader,
      responseHeader,
      responseTrailer,
      protocolName: protocol.name,
      values: createContextValues(),
      url: `http://${req.headers[":authority"] ?? req.headers.host ?? "localhost"}${req.url ?? ""}`,
    };
    const common = {
      service: context.service,
      requestMethod: context.requestMethod,
      url: context.url,
      signal: context.signal,
      header: requestHeader,
      contextValues: context.values,
    };
    const output = route.method.output;
    if (route.kind === "unary") {
      const call = applyInterceptors(async () => {
        const message = await route.impl(input, context);
        return {
          stream: false as const,
          service: context.service,
          method: route.method,
          header: responseHeader,
          trailer: responseTrailer,
          message: normalize(output, message),
        } as UnaryResponse;
      }, interceptors);
      const response = (await call({ stream: false, method: route.method, message: input, ...common } as never)) as UnaryResponse;
      copyHeaders(response.header, responseHeader);
      copyHeaders(response.trailer, responseTrailer);
      const data = route.codecs.output(protocol.binary).serialize(response.message);
      settle();
      if (grpc) await writeGrpcUnary(res, responseHeader, responseTrailer, data, compression);
      else await writeConnectUnary(res, 200, responseHeader, responseTrailer, data, compression);
      return;
    }
    const call = applyInterceptors(
      () =>
        Promise.resolve({
          stream: true as const,
          service: context.service,
          method: route.method,
          header: responseHeader,
          trailer: responseTrailer,
          message: route.impl(input, context) as AsyncIterable<unknown>,
        } as StreamResponse),
      interceptors,
    );
    const response = (await call({ stream: true, method: route.method, message: single(input), ...common } as never)) as StreamResponse;
    copyHeaders(response.header, responseHeader);
    const write = grpc ? writeGrpcStream : writeConnectStream;
    await write(res, response, output, route.codecs.output(protocol.binary), responseHeader, responseTrailer, compression);
    settle();
  } catch (err) {
    settle();
    const error = asConnectError(err);
    if (!hasErrorInfo(error)) {
      // A protocol error (raised here, before the interceptors): described as connect-node's are (rpc-adapter.ts).
      describeProtocolError(error, {
        requestId: responseHeader.get("x-request-id") ?? (limits.newRequestId ?? newProtocolRequestId)(),
        callerRequestId: firstHeader(req.headers["x-request-id"]),
        responseHeader,
        readMaxBytes: limits.readMaxBytes,
        ...(err === timeout.error ? { timeoutHeader: names.timeout } : {}),
      });
    }
    await writeError(res, protocol, error, responseHeader, responseTrailer, compression);
  }
}
