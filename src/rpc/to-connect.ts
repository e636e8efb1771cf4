import { create, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { anyPack, DurationSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  QuotaFailureSchema,
  RetryInfoSchema,
} from "../../gen/ts/google/rpc/error_details_pb.js";
import { StatusSchema, type Status } from "../../gen/ts/google/rpc/status_pb.js";
import { LlmError } from "../errors/llm-error.js";
import { ERROR_DOMAIN, TAXONOMY, type GrpcCode } from "../errors/taxonomy.js";

/** The taxonomy's code names as Connect's codes: the one table between the domain and the transport. */
const CONNECT_CODES: Readonly<Record<GrpcCode, Code>> = {
  CANCELLED: Code.Canceled,
  UNKNOWN: Code.Unknown,
  INVALID_ARGUMENT: Code.InvalidArgument,
  DEADLINE_EXCEEDED: Code.DeadlineExceeded,
  NOT_FOUND: Code.NotFound,
  ALREADY_EXISTS: Code.AlreadyExists,
  PERMISSION_DENIED: Code.PermissionDenied,
  RESOURCE_EXHAUSTED: Code.ResourceExhausted,
  FAILED_PRECONDITION: Code.FailedPrecondition,
  ABORTED: Code.Aborted,
  OUT_OF_RANGE: Code.OutOfRange,
  UNIMPLEMENTED: Code.Unimplemented,
  INTERNAL: Code.Internal,
  UNAVAILABLE: Code.Unavailable,
  DATA_LOSS: Code.DataLoss,
  UNAUTHENTICATED: Code.Unauthenticated,
};

/** The Connect code of a gRPC code name. */
export function connectCode(code: GrpcCode): Code {
  return CONNECT_CODES[code];
}

/** A detail ready for ConnectError: the schema and the message value. */
interface Detail {
  desc: DescMessage;
  value: MessageInitShape<DescMessage>;
}

function durationOf(ms: number) {
  const seconds = Math.floor(ms / 1000);
  return create(DurationSchema, { seconds: BigInt(seconds), nanos: Math.round((ms - seconds * 1000) * 1e6) });
}

function detailsOf(err: LlmError, requestId?: string, clientRequestId?: string): Detail[] {
  const metadata: Record<string, string> = { ...err.metadata };
  if (requestId) metadata["request_id"] = requestId;
  if (clientRequestId) metadata["client_request_id"] = clientRequestId;
  const details: Detail[] = [
    { desc: ErrorInfoSchema, value: { reason: err.reason, domain: ERROR_DOMAIN, metadata } },
  ];
  if (err.retryAfterMs !== undefined) {
    details.push({ desc: RetryInfoSchema, value: { retryDelay: durationOf(Math.max(0, err.retryAfterMs)) } });
  }
  if (err.fieldViolations.length > 0) {
    details.push({ desc: BadRequestSchema, value: { fieldViolations: err.fieldViolations } });
  }
  if (err.quotaViolations.length > 0) {
    details.push({ desc: QuotaFailureSchema, value: { violations: err.quotaViolations } });
  }
  return details;
}

function clientMessage(err: LlmError): string {
  return TAXONOMY[err.reason].sanitise ? "internal error" : err.message;
}

/**
 * The one place a domain error becomes a ConnectError with its google.rpc details. The ErrorInfo
 * carries the server's `request_id` and, when the caller sent an x-request-id, `client_request_id`.
 */
export function toConnectError(err: LlmError, requestId?: string, clientRequestId?: string): ConnectError {
  return new ConnectError(clientMessage(err), connectCode(TAXONOMY[err.reason].code), undefined, detailsOf(err, requestId, clientRequestId));
}

/** The same error as a google.rpc.Status, for a failed batch item. */
export function toRpcStatus(err: LlmError, requestId?: string, clientRequestId?: string): Status {
  return create(StatusSchema, {
    code: connectCode(TAXONOMY[err.reason].code),
    message: clientMessage(err),
    details: detailsOf(err, requestId, clientRequestId).map((d) => anyPack(d.desc, create(d.desc, d.value))),
  });
}
