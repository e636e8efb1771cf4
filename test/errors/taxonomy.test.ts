import { describe, expect, it } from "vitest";
import { ErrorReasonSchema } from "../../gen/ts/llm/v1/llm_service_pb.js";
import { LlmError } from "../../src/errors/llm-error.js";
import { ERROR_REASONS, TAXONOMY } from "../../src/errors/taxonomy.js";

describe("error taxonomy", () => {
  it("the proto ErrorReason enum mirrors the taxonomy table exactly", () => {
    const protoReasons = ErrorReasonSchema.values
      .map((v) => v.name.replace(/^ERROR_REASON_/, ""))
      .filter((n) => n !== "UNSPECIFIED")
      .sort();
    expect(protoReasons).toEqual([...ERROR_REASONS].sort());
  });

  it("maps reasons to the documented gRPC codes", () => {
    expect(TAXONOMY.INVALID_REQUEST.code).toBe("INVALID_ARGUMENT");
    expect(TAXONOMY.MODEL_NOT_FOUND.code).toBe("NOT_FOUND");
    expect(TAXONOMY.RATE_LIMITED.code).toBe("RESOURCE_EXHAUSTED");
    expect(TAXONOMY.PROVIDER_TIMEOUT.code).toBe("DEADLINE_EXCEEDED");
    expect(TAXONOMY.CIRCUIT_OPEN.code).toBe("UNAVAILABLE");
    expect(TAXONOMY.PROVIDER_AUTH_FAILED.code).toBe("INTERNAL");
    expect(TAXONOMY.CANCELLED.code).toBe("CANCELLED");
    // The model's answer broke the request's response format: not the caller's argument, not an outage to retry blindly.
    expect(TAXONOMY.OUTPUT_SCHEMA_MISMATCH).toEqual({ code: "FAILED_PRECONDITION", retryable: false, fallback: false, sanitise: false });
    // Our own limits are never retried by the router; upstream trouble is.
    expect(TAXONOMY.RATE_LIMITED.retryable).toBe(false);
    expect(TAXONOMY.PROVIDER_RATE_LIMITED.retryable).toBe(true);
    expect(TAXONOMY.PROVIDER_UNAVAILABLE.retryable).toBe(true);
  });

  it("an error's retryability is its row's", () => {
    for (const reason of ERROR_REASONS) {
      expect(new LlmError(reason, "x").retryable).toBe(TAXONOMY[reason].retryable);
    }
  });
});
