/**
 * The generated protobuf-es code, re-exported unchanged: every message type, its schema
 * (`GenerateRequestSchema`, …), the enums and the `LlmService` descriptor, plus the
 * google.rpc error details (`ErrorInfoSchema`, `RetryInfoSchema`, …) and `google.rpc.Status`.
 * Nothing here is wrapped: the SDK adds a client factory, not a second set of types.
 */
export * from "../../../gen/ts/llm/v1/llm_service_pb.js";
export * from "../../../gen/ts/google/rpc/error_details_pb.js";
export * from "../../../gen/ts/google/rpc/status_pb.js";
