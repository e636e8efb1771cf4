/**
 * The Connect protocol's error and trailer encodings: the HTTP status of an error code, a unary
 * response's trailers as `trailer-` headers, an error's JSON body, and a stream's end-of-stream message.
 */
import { Code, type ConnectError } from "@connectrpc/connect";
import { errorToJson, mergeNonProtocolHeaders } from "./connect-internals.js";

/** The HTTP status of a Connect unary error (connectrpc.com/docs/protocol#error-codes). */
const HTTP_STATUS: Record<Code, number> = {
  [Code.Canceled]: 499,
  [Code.Unknown]: 500,
  [Code.InvalidArgument]: 400,
  [Code.DeadlineExceeded]: 504,
  [Code.NotFound]: 404,
  [Code.AlreadyExists]: 409,
  [Code.PermissionDenied]: 403,
  [Code.ResourceExhausted]: 429,
  [Code.FailedPrecondition]: 400,
  [Code.Aborted]: 409,
  [Code.OutOfRange]: 400,
  [Code.Unimplemented]: 501,
  [Code.Internal]: 500,
  [Code.Unavailable]: 503,
  [Code.DataLoss]: 500,
  [Code.Unauthenticated]: 401,
};

export function codeToHttpStatus(code: Code): number {
  return HTTP_STATUS[code] ?? 500;
}

/** One Headers with the trailers added as `trailer-<name>` (a Connect unary response has no trailers of its own). */
export function trailerMux(header: Headers, trailer: Headers): Headers {
  const out = new Headers(header);
  trailer.forEach((value, key) => out.append(`trailer-${key}`, value));
  return out;
}

const encoder = new TextEncoder();

/** A Connect unary error body. */
export function errorJsonBytes(error: ConnectError): Uint8Array {
  return encoder.encode(JSON.stringify(errorToJson(error, {})));
}

/**
 * The JSON of a Connect stream's end-of-stream message: `{"error"?, "metadata"?}`, the metadata being the
 * trailers, to which an error (not one read off the wire) adds its own metadata first.
 */
export function endStreamJsonBytes(trailer: Headers, error: ConnectError | undefined): Uint8Array {
  const end: { error?: unknown; metadata?: Record<string, string[]> } = {};
  if (error !== undefined) {
    end.error = errorToJson(error, {});
    if (!error.isWireError) mergeNonProtocolHeaders(trailer, error.metadata);
  }
  let metadata: Record<string, string[]> | undefined;
  trailer.forEach((value, key) => {
    (metadata ??= {})[key] = [value];
  });
  if (metadata !== undefined) end.metadata = metadata;
  return encoder.encode(JSON.stringify(end));
}
