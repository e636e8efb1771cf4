/**
 * The hot path: gRPC calls (unary and server-streaming) and Connect unary POSTs to one service,
 * served straight from node:http2 / node:http without connect-node's universal-handler plumbing
 * (async-iterable pipes, three header copies and two abort controllers per call), which the
 * profile showed to cost more than the gateway itself.
 *
 * It runs the same interceptors and the same ServiceImpl as connect-node, and writes the same
 * wire output: connect's own serialization, timeout parsing, error encoders and compressors are used
 * (responses of 1 KiB or more are compressed when the client accepts it, response-compression.ts).
 * What it does not take (compressed requests, gRPC-web, Connect streaming and GET, JSON over gRPC,
 * HTTP/1.1 gRPC, other services such as health and reflection) is left to connect-node: `handle`
 * returns false.
 */
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import type { IncomingMessage, ServerResponse } from "node:http";
import { create, isMessage, type DescMessage, type DescMethod, type DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, createContextValues, type HandlerContext, type Interceptor, type ServiceImpl, type UnaryResponse, type StreamResponse } from "@connectrpc/connect";
import { createMethodSerializationLookup, mergeNonProtocolHeaders, type MethodSerializationLookup } from "@connectrpc/connect/protocol";
import { parseTimeout as parseGrpcTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { codeToHttpStatus, errorToJsonBytes, parseTimeout as parseConnectTimeout, trailerMux } from "@connectrpc/connect/protocol-connect";
import { deadlineSignal } from "../core/deadline-signal.js";
import { describeProtocolError, hasErrorInfo, newProtocolRequestId } from "./protocol-errors.js";
import { COMPRESS_MIN_BYTES, compressed, responseCompression, type Compression } from "./response-compression.js";

type NodeRequest = IncomingMessage | Http2ServerRequest;

/** What this file uses of ServerResponse and Http2ServerResponse (whose method unions TypeScript cannot call). */
interface NodeResponse {
  writeHead(status: number, headers: Record<string, string>): unknown;
  write(chunk: Uint8Array): boolean;
  end(chunk?: Uint8Array): unknown;
  addTrailers(headers: Record<string, string>): void;
  readonly headersSent: boolean;
  readonly destroyed: boolean;
  readonly writableEnded: boolean;
  once(event: "close", listener: () => void): unknown;
  on(event: "close" | "drain", listener: () => void): unknown;
  off(event: "close" | "drain", listener: () => void): unknown;
}

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

interface Route {
  method: DescMethod;
  kind: "unary" | "server_streaming";
  impl: (input: unknown, ctx: HandlerContext) => unknown;
  serialization: MethodSerializationLookup<DescMessage, DescMessage>;
}

/** A call's protocol, from its content type: gRPC binary, or Connect unary binary / JSON. */
type Protocol = { name: "grpc"; binary: true } | { name: "connect"; binary: boolean };

const GRPC_CONTENT_TYPES = new Set(["application/grpc", "application/grpc+proto"]);

function protocolOf(req: NodeRequest): Protocol | undefined {
  const type = req.headers["content-type"];
  if (type === undefined) return undefined;
  if (GRPC_CONTENT_TYPES.has(type)) {
    const encoding = req.headers["grpc-encoding"];
    return req.httpVersionMajor === 2 && (encoding === undefined || encoding === "identity") ? { name: "grpc", binary: true } : undefined;
  }
  const encoding = req.headers["content-encoding"];
  if (encoding !== undefined && encoding !== "identity") return undefined;
  if (type === "application/proto") return { name: "connect", binary: true };
  if (type === "application/json" || type === "application/json; charset=utf-8") return { name: "connect", binary: false };
  return undefined;
}

/** The request's headers as web Headers (pseudo-headers left out), which interceptors and handlers read. */
function webHeaders(req: NodeRequest): Headers {
  const headers = new Headers();
  const raw = req.headers;
  for (const key in raw) {
    if (key.charCodeAt(0) === 58 /* ":" */) continue;
    const value = raw[key];
    if (value === undefined) continue;
    if (typeof value === "string") headers.append(key, value);
    else for (const v of value) headers.append(key, v);
  }
  return headers;
}

function nodeHeaders(headers: Headers, into: Record<string, string> = {}): Record<string, string> {
  headers.forEach((value, key) => {
    into[key] = value;
  });
  return into;
}

function asConnectError(err: unknown): ConnectError {
  return err instanceof ConnectError ? err : new ConnectError("internal error", Code.Internal, undefined, undefined, err);
}

function encodeEnvelope(data: Uint8Array, flags = 0): Buffer {
  const out = Buffer.allocUnsafe(5 + data.byteLength);
  out[0] = flags;
  out.writeUInt32BE(data.byteLength, 1);
  out.set(data, 5);
  return out;
}

/** The one message of a gRPC request body, or the protocol error connect-node reports for it. */
function decodeSingleEnvelope(body: Buffer, kind: string): Uint8Array {
  if (body.byteLength === 0) throw new ConnectError(`protocol error: missing input message for ${kind} method`, Code.Unimplemented);
  if (body.byteLength < 5) throw new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument);
  const flags = body[0] ?? 0;
  const length = body.readUInt32BE(1);
  if (body.byteLength < 5 + length) throw new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument);
  if (body.byteLength > 5 + length) throw new ConnectError(`protocol error: received extra input message for ${kind} method`, Code.Unimplemented);
  if ((flags & 0b01) === 0b01) throw new ConnectError("received compressed envelope, but do not know how to decompress", Code.Internal);
  return body.subarray(5, 5 + length);
}

const ENVELOPE_HEADER_BYTES = 5;

/**
 * Reads the whole body, refusing (and no longer buffering) past the limit, which is on the message as in
 * connect-node: a gRPC body may be its 5-byte envelope header larger, and a declared message length over
 * the limit is refused as soon as the header arrives, whether or not the body then comes whole. A Connect
 * refusal names the content-length if sent (as connect-node's). `enveloped` is the method kind of a gRPC call.
 */
function readBody(req: NodeRequest, limit: number, enveloped: string | undefined): Promise<Buffer> {
  const bodyLimit = enveloped === undefined ? limit : limit + ENVELOPE_HEADER_BYTES;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    let declared: number | undefined;
    const fail = (error: ConnectError) => {
      failed = true;
      chunks.length = 0;
      reject(error);
    };
    req.on("data", (chunk: Buffer) => {
      if (failed) return;
      size += chunk.byteLength;
      if (enveloped !== undefined && declared === undefined && size >= ENVELOPE_HEADER_BYTES) {
        declared = (chunks.length > 0 ? Buffer.concat([...chunks, chunk]) : chunk).readUInt32BE(1);
        if (declared > limit) return fail(new ConnectError(`message size ${declared} is larger than configured readMaxBytes ${limit}`, Code.ResourceExhausted));
      }
      if (size > bodyLimit) {
        if (enveloped !== undefined) return fail(new ConnectError(`protocol error: received extra input message for ${enveloped} method`, Code.Unimplemented));
        const length = req.headers["content-length"];
        return fail(new ConnectError(`message size${length !== undefined ? ` ${length}` : ""} is larger than configured readMaxBytes ${limit}`, Code.ResourceExhausted));
      }
      chunks.push(chunk);
    });
    req.once("end", () => {
      if (!failed) resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    });
    req.once("error", (err) => {
      if (!failed) reject(new ConnectError("failed to read the request body", Code.Canceled, undefined, undefined, err));
      failed = true;
    });
  });
}

/** Resolves once the response can take more data (or has closed). */
function drained(res: NodeResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}

function responseClosed(res: NodeResponse): boolean {
  return res.destroyed || res.writableEnded;
}

/** Serves a call it can take (true) or leaves it alone (false); `served` counts the calls it took. */
export interface FastPath {
  (req: NodeRequest, res: ServerResponse | Http2ServerResponse): boolean;
  readonly served: number;
}

/**
 * Returns a handler that serves the calls it can and returns false for the rest. A call it takes
 * is answered in full, errors included; it never throws.
 */
export function createFastPath<S extends DescService>(options: FastPathOptions<S>): FastPath {
  const routes = new Map<string, Route>();
  const implementations = options.impl as unknown as Record<string, ((input: unknown, ctx: HandlerContext) => unknown) | undefined>;
  for (const method of options.service.methods) {
    if (method.methodKind !== "unary" && method.methodKind !== "server_streaming") continue;
    const impl = implementations[method.localName];
    if (impl === undefined) continue;
    routes.set(`/${options.service.typeName}/${method.name}`, {
      method,
      kind: method.methodKind,
      impl: impl.bind(options.impl),
      serialization: createMethodSerializationLookup(method, undefined, undefined, {
        readMaxBytes: options.readMaxBytes,
        writeMaxBytes: 0xffffffff,
      }),
    });
  }
  const interceptors = [...options.interceptors];

  let served = 0;
  const handle = (req: NodeRequest, res: ServerResponse | Http2ServerResponse): boolean => {
    if (req.method !== "POST" || req.url === undefined) return false;
    const route = routes.get(req.url);
    if (route === undefined) return false;
    const protocol = protocolOf(req);
    if (protocol === undefined || (protocol.name === "connect" && route.kind !== "unary")) return false;
    served++;
    void serve(route, protocol, req, res as unknown as NodeResponse, options, interceptors);
    return true;
  };
  return Object.defineProperty(handle, "served", { get: () => served, enumerable: true }) as FastPath;
}

async function serve<S extends DescService>(
  route: Route,
  protocol: Protocol,
  req: NodeRequest,
  res: NodeResponse,
  options: FastPathOptions<S>,
  interceptors: Interceptor[],
): Promise<void> {
  const grpc = protocol.name === "grpc";
  const timeout = grpc
    ? parseGrpcTimeout(firstHeader(req.headers["grpc-timeout"]) ?? null, options.maxTimeoutMs)
    : parseConnectTimeout(firstHeader(req.headers["connect-timeout-ms"]) ?? null, options.maxTimeoutMs);
  const responseHeader = new Headers({ "content-type": grpc ? "application/grpc+proto" : protocol.binary ? "application/proto" : "application/json" });
  // Response compression as connect-node negotiates it; gRPC announces it up front, as connect-node does.
  const compression = responseCompression(firstHeader(req.headers[grpc ? "grpc-accept-encoding" : "accept-encoding"]));
  if (grpc && compression !== null) responseHeader.set("grpc-encoding", compression.name);
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
    const body = await readBody(req, options.readMaxBytes, grpc ? kind : undefined);
    const bytes = grpc ? decodeSingleEnvelope(body, kind) : body;
    const input = route.serialization.getI(protocol.binary).parse(bytes);
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
      const data = route.serialization.getO(protocol.binary).serialize(response.message);
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
    await writeGrpcStream(res, response, route, output, responseHeader, responseTrailer, compression);
    settle();
  } catch (err) {
    settle();
    const error = asConnectError(err);
    if (!hasErrorInfo(error)) {
      // A protocol error (raised here, before the interceptors): described as connect-node's are (rpc-adapter.ts).
      describeProtocolError(error, {
        requestId: responseHeader.get("x-request-id") ?? (options.newRequestId ?? newProtocolRequestId)(),
        callerRequestId: firstHeader(req.headers["x-request-id"]),
        responseHeader,
        readMaxBytes: options.readMaxBytes,
        ...(err === timeout.error ? { timeoutHeader: grpc ? "grpc-timeout" : "connect-timeout-ms" } : {}),
      });
    }
    await writeError(res, grpc, error, responseHeader, responseTrailer, compression);
  }
}

function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function normalize(schema: DescMessage, message: unknown): never {
  return (isMessage(message, schema) ? message : create(schema, message as never)) as never;
}

async function* single<T>(value: T): AsyncGenerator<T> {
  yield value;
}

type AnyFn = (req: never) => Promise<UnaryResponse | StreamResponse>;

function applyInterceptors(next: AnyFn, interceptors: readonly Interceptor[]): AnyFn {
  let fn = next;
  for (let i = interceptors.length - 1; i >= 0; i--) fn = (interceptors[i] as Interceptor)(fn as never) as unknown as AnyFn;
  return fn;
}

function copyHeaders(from: Headers, to: Headers): void {
  if (from === to) return;
  for (const key of [...to.keys()]) to.delete(key);
  from.forEach((value, key) => to.set(key, value));
}

/** A gRPC message envelope, compressed (flag 1) when connect-node would compress it. */
async function frame(data: Uint8Array, compression: Compression | null): Promise<Buffer> {
  const out = await compressed(data, compression);
  return encodeEnvelope(out.data, out.compressed ? 1 : 0);
}

async function writeGrpcUnary(res: NodeResponse, header: Headers, trailer: Headers, data: Uint8Array, compression: Compression | null): Promise<void> {
  const framed = await frame(data, compression);
  if (responseClosed(res)) return;
  res.writeHead(200, nodeHeaders(header));
  res.write(framed);
  trailer.set("grpc-status", "0");
  res.addTrailers(nodeHeaders(trailer));
  res.end();
}

async function writeConnectUnary(res: NodeResponse, status: number, header: Headers, trailer: Headers, body: Uint8Array, compression: Compression | null): Promise<void> {
  // An error body that fails to compress (it cannot, short of running out of memory) goes out as it is.
  const out = await compressed(body, compression).catch(() => ({ data: body, compressed: false }));
  if (responseClosed(res)) return;
  const data = out.data;
  if (out.compressed && compression !== null) header.set("content-encoding", compression.name);
  const headers = nodeHeaders(trailerMux(header, trailer));
  headers["content-length"] = String(data.byteLength);
  res.writeHead(status, headers);
  res.end(data);
}

/** Streams the handler's messages as gRPC envelopes, honouring backpressure; the status goes in the trailers. */
async function writeGrpcStream(
  res: NodeResponse,
  response: StreamResponse,
  route: Route,
  output: DescMessage,
  header: Headers,
  trailer: Headers,
  compression: Compression | null,
): Promise<void> {
  const serializer = route.serialization.getO(true);
  const it = (response.message as AsyncIterable<unknown>)[Symbol.asyncIterator]();
  let headersSent = false;
  let failure: ConnectError | undefined;
  try {
    for (;;) {
      const step = await it.next();
      if (step.done === true) break;
      const data = serializer.serialize(normalize(output, step.value));
      // Small messages (every token) are framed at once; only one worth compressing waits for the compressor.
      const framed = compression === null || data.byteLength < COMPRESS_MIN_BYTES ? encodeEnvelope(data) : await frame(data, compression);
      if (responseClosed(res)) {
        await it.return?.(undefined);
        return;
      }
      if (!headersSent) {
        res.writeHead(200, nodeHeaders(header));
        headersSent = true;
      }
      if (!res.write(framed)) await drained(res);
    }
    copyHeaders(response.trailer, trailer);
  } catch (err) {
    failure = asConnectError(err);
  }
  if (responseClosed(res)) return;
  if (!headersSent) res.writeHead(200, nodeHeaders(header));
  if (failure) setTrailerStatus(trailer, failure);
  else trailer.set("grpc-status", "0");
  res.addTrailers(nodeHeaders(trailer));
  res.end();
}

async function writeError(res: NodeResponse, grpc: boolean, error: ConnectError, header: Headers, trailer: Headers, compression: Compression | null): Promise<void> {
  if (responseClosed(res)) return;
  if (grpc) {
    if (!res.headersSent) res.writeHead(200, nodeHeaders(header));
    setTrailerStatus(trailer, error);
    res.addTrailers(nodeHeaders(trailer));
    res.end();
    return;
  }
  header.set("content-type", "application/json");
  if (!error.isWireError) mergeNonProtocolHeaders(header, error.metadata);
  await writeConnectUnary(res, codeToHttpStatus(error.code), header, trailer, errorToJsonBytes(error, {}), compression);
}
