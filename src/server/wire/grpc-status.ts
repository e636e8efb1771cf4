/** A gRPC call's status as trailers (or, trailers-only, headers): grpc-status, grpc-message, grpc-status-details-bin. */
import { create } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import { encodeBinaryHeader, type ConnectError } from "@connectrpc/connect";
import { StatusSchema } from "../../../gen/ts/google/rpc/status_pb.js";
import { mergeNonProtocolHeaders } from "./connect-internals.js";

/**
 * Sets the status of `error` (or OK) on `target`: the error's own metadata too (unless it came off the
 * wire), its message percent-encoded, and its details as a google.rpc.Status in grpc-status-details-bin.
 */
export function setGrpcStatus(target: Headers, error?: ConnectError): Headers {
  if (error === undefined) {
    target.set("grpc-status", "0");
    return target;
  }
  if (!error.isWireError) mergeNonProtocolHeaders(target, error.metadata);
  target.set("grpc-status", error.code.toString(10));
  target.set("grpc-message", encodeURIComponent(error.rawMessage));
  if (error.details.length > 0) {
    const status = create(StatusSchema, {
      code: error.code,
      message: error.rawMessage,
      details: error.details.map((detail) =>
        "desc" in detail ? anyPack(detail.desc, create(detail.desc, detail.value)) : { typeUrl: `type.googleapis.com/${detail.type}`, value: detail.value },
      ),
    });
    target.set("grpc-status-details-bin", encodeBinaryHeader(status, StatusSchema));
  }
  return target;
}
