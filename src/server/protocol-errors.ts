/**
 * Errors raised by the RPC protocol layer before any interceptor or handler runs (connect-node's, and
 * the fast path's copies of them): a body that does not decode, a message over MAX_REQUEST_BYTES, a bad
 * deadline header, a compression or content type the server does not speak. They come without the
 * google.rpc.ErrorInfo every error of this service carries and without x-request-id; this adds both,
 * keeping the code and message connect chose (but INVALID_ARGUMENT, not INTERNAL, for bad input), so a
 * client can tell an oversize message from a rate limit.
 */
import { randomUUID } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorInfoSchema } from "../../gen/ts/google/rpc/error_details_pb.js";
import { LlmError, type FieldViolation } from "../errors/llm-error.js";
import type { ErrorReason } from "../errors/taxonomy.js";
import { toConnectError } from "../rpc/to-connect.js";
import { CLIENT_REQUEST_ID_HEADER, wellFormedClientRequestId } from "./call-values.js";

/**
 * The request id of a call refused before any interceptor gave it one: a new uuid of the server's, as
 * requestIdInterceptor gives every call (the caller's x-request-id is never the call's id).
 */
export function newProtocolRequestId(): string {
  return randomUUID();
}

export interface ProtocolErrorFacts {
  /** The request id the error reports (ErrorInfo metadata and, unless `responseHeader` has one, x-request-id). */
  requestId: string;
  /** The caller's x-request-id as sent: echoed as x-client-request-id when well-formed, never the call's id. */
  callerRequestId?: string | null | undefined;
  /** The response headers so far: an x-request-id there is not repeated in the error's metadata. */
  responseHeader?: Headers;
  /** The call's deadline header (grpc-timeout, connect-timeout-ms) when parsing it raised this error. */
  timeoutHeader?: string;
  /** MAX_REQUEST_BYTES, reported with REQUEST_TOO_LARGE. */
  readMaxBytes?: number;
}

export function hasErrorInfo(error: ConnectError): boolean {
  return error.details.some((d) => ("desc" in d ? d.desc.typeName : d.type) === ErrorInfoSchema.typeName);
}

/** The reason a protocol error of this code reports; the taxonomy gives each of these reasons the same code. */
function reasonOf(code: Code, facts: ProtocolErrorFacts): ErrorReason {
  switch (code) {
    case Code.InvalidArgument:
      return facts.timeoutHeader !== undefined ? "INVALID_REQUEST" : "MALFORMED_REQUEST";
    case Code.ResourceExhausted:
      return "REQUEST_TOO_LARGE";
    case Code.Unimplemented:
      return "UNSUPPORTED_PROTOCOL";
    case Code.DeadlineExceeded:
      return "PROVIDER_TIMEOUT";
    case Code.Canceled:
      return "CANCELLED";
    default:
      return "INTERNAL";
  }
}

/**
 * connect answers two kinds of bad input with INTERNAL: a message that does not decode as protobuf
 * ("parse binary: …") and a compressed flag without a compression. They are the caller's fault, so
 * INVALID_ARGUMENT (bad input never gets INTERNAL here).
 */
function isBadInput(error: ConnectError): boolean {
  return error.code === Code.Internal && (error.rawMessage.startsWith("parse binary: ") || error.rawMessage === COMPRESSED_WITHOUT_ENCODING);
}
const COMPRESSED_WITHOUT_ENCODING = "received compressed envelope, but do not know how to decompress";

/**
 * Gives a protocol error (one without ErrorInfo) its ErrorInfo — reason, domain and request_id —,
 * a BadRequest naming the deadline header when that was the fault, and x-request-id in its metadata
 * (sent as a response header or trailer). Mutates and returns the error; one with ErrorInfo is left as is.
 */
export function describeProtocolError(error: ConnectError, facts: ProtocolErrorFacts): ConnectError {
  if (hasErrorInfo(error)) return error;
  if (isBadInput(error)) {
    // The error is already on its way to the wire (connect serializes it after this): correct it in place.
    const corrected = new ConnectError(error.rawMessage, Code.InvalidArgument);
    Object.assign(error, { code: corrected.code, message: corrected.message });
  }
  const reason = reasonOf(error.code, facts);
  const metadata: Record<string, string> = {};
  if (reason === "REQUEST_TOO_LARGE" && facts.readMaxBytes !== undefined) metadata["limit_bytes"] = String(facts.readMaxBytes);
  const fieldViolations: FieldViolation[] =
    reason === "INVALID_REQUEST" && facts.timeoutHeader !== undefined ? [{ field: facts.timeoutHeader, description: error.rawMessage }] : [];
  const described = toConnectError(new LlmError(reason, error.rawMessage, { metadata, fieldViolations }), facts.requestId);
  error.details.push(...described.details);
  if (!error.metadata.has("x-request-id") && !facts.responseHeader?.has("x-request-id")) {
    error.metadata.set("x-request-id", facts.requestId);
    const clientRequestId = wellFormedClientRequestId(facts.callerRequestId);
    if (clientRequestId !== undefined) error.metadata.set(CLIENT_REQUEST_ID_HEADER, clientRequestId);
  }
  return error;
}
