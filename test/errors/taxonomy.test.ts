import { Code, ConnectError } from "@connectrpc/connect";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  QuotaFailureSchema,
  RetryInfoSchema,
} from "../../gen/ts/google/rpc/error_details_pb.js";
import { ErrorReasonSchema } from "../../gen/ts/llm/v1/llm_service_pb.js";
import { LlmError, asLlmError } from "../../src/errors/llm-error.js";
import { ERROR_REASONS, TAXONOMY } from "../../src/errors/taxonomy.js";
import { toConnectError, toRpcStatus } from "../../src/errors/to-connect.js";

describe("error taxonomy", () => {
  it("the proto ErrorReason enum mirrors the taxonomy table exactly", () => {
    const protoReasons = ErrorReasonSchema.values
      .map((v) => v.name.replace(/^ERROR_REASON_/, ""))
      .filter((n) => n !== "UNSPECIFIED")
      .sort();
    expect(protoReasons).toEqual([...ERROR_REASONS].sort());
  });

  it("maps reasons to the documented gRPC codes", () => {
    expect(TAXONOMY.INVALID_REQUEST.code).toBe(Code.InvalidArgument);
    expect(TAXONOMY.MODEL_NOT_FOUND.code).toBe(Code.NotFound);
    expect(TAXONOMY.RATE_LIMITED.code).toBe(Code.ResourceExhausted);
    expect(TAXONOMY.PROVIDER_TIMEOUT.code).toBe(Code.DeadlineExceeded);
    expect(TAXONOMY.CIRCUIT_OPEN.code).toBe(Code.Unavailable);
    expect(TAXONOMY.PROVIDER_AUTH_FAILED.code).toBe(Code.Internal);
    expect(TAXONOMY.CANCELLED.code).toBe(Code.Canceled);
    // Our own limits are never retried by the router; upstream trouble is.
    expect(TAXONOMY.RATE_LIMITED.retryable).toBe(false);
    expect(TAXONOMY.PROVIDER_RATE_LIMITED.retryable).toBe(true);
    expect(TAXONOMY.PROVIDER_UNAVAILABLE.retryable).toBe(true);
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
