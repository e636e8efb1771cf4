import { Code, ConnectError } from "@connectrpc/connect";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  QuotaFailureSchema,
  RetryInfoSchema,
} from "../../gen/ts/google/rpc/error_details_pb.js";
import { LlmError, asLlmError } from "../../src/errors/llm-error.js";
import { ERROR_REASONS, TAXONOMY, type GrpcCode } from "../../src/errors/taxonomy.js";
import { connectCode, toConnectError, toRpcStatus } from "../../src/rpc/to-connect.js";

/** The numbers google.rpc.Code gives each name (grpc/doc/statuscodes.md), written out here on purpose. */
const GRPC_CODE_NUMBERS: Record<GrpcCode, number> = {
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
};

describe("domain errors → Connect", () => {
  it("every gRPC code name becomes the Connect code with the same number", () => {
    for (const [name, number] of Object.entries(GRPC_CODE_NUMBERS) as [GrpcCode, number][]) {
      expect(connectCode(name), name).toBe(number);
    }
  });

  it("every reason's ConnectError and google.rpc.Status carry the code of its taxonomy row", () => {
    for (const reason of ERROR_REASONS) {
      const expected = GRPC_CODE_NUMBERS[TAXONOMY[reason].code];
      expect(toConnectError(new LlmError(reason, "x")).code, reason).toBe(expected);
      expect(toRpcStatus(new LlmError(reason, "x")).code, reason).toBe(expected);
    }
  });

  it("a ConnectError carries ErrorInfo, RetryInfo, BadRequest and QuotaFailure as they apply", () => {
    const err = toConnectError(
      new LlmError("RATE_LIMITED", "slow down", {
        retryAfterMs: 1500,
        quotaViolations: [{ subject: "key:abc", description: "requests per minute" }],
        fieldViolations: [{ field: "model", description: "x" }],
      }),
      "req-1",
    );
    expect(err.code).toBe(Code.ResourceExhausted);
    const info = err.findDetails(ErrorInfoSchema)[0];
    expect(info?.reason).toBe("RATE_LIMITED");
    expect(info?.metadata["request_id"]).toBe("req-1");
    const retry = err.findDetails(RetryInfoSchema)[0];
    expect(retry?.retryDelay?.seconds).toBe(1n);
    expect(retry?.retryDelay?.nanos).toBe(500_000_000);
    expect(err.findDetails(QuotaFailureSchema)[0]?.violations[0]?.subject).toBe("key:abc");
    expect(err.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field).toBe("model");
  });

  it("internal errors and upstream auth failures are sanitised; their cause never reaches the client", () => {
    const secret = "sk-live-very-secret";
    const wrapped = asLlmError(new Error(`upstream said: bad key ${secret}`));
    expect(wrapped.reason).toBe("INTERNAL");
    const err = toConnectError(wrapped);
    expect(err.rawMessage).toBe("internal error");
    expect(err.message).not.toContain(secret);
    expect(err.cause).toBeUndefined();
    expect(JSON.stringify(err.findDetails(ErrorInfoSchema))).not.toContain(secret);
    const auth = toConnectError(new LlmError("PROVIDER_AUTH_FAILED", `key ${secret} refused`));
    expect(auth.rawMessage).not.toContain(secret);
    expect(auth).toBeInstanceOf(ConnectError);
  });

  it("a failed batch item's google.rpc.Status packs the same details", () => {
    const status = toRpcStatus(new LlmError("MODEL_NOT_FOUND", "no such model"), "req-2.1");
    expect(status.code).toBe(Code.NotFound);
    const info = status.details.map((d) => anyUnpack(d, ErrorInfoSchema)).find((x) => x !== undefined);
    expect(info?.reason).toBe("MODEL_NOT_FOUND");
    expect(info?.metadata["request_id"]).toBe("req-2.1");
  });
});
