/** The domain every ErrorInfo this service sends carries. */
export const ERROR_DOMAIN = "llm-service";

/** Every reason this service can fail with. The proto's ErrorReason enum mirrors it (a test keeps them equal). */
export type ErrorReason =
  | "INVALID_REQUEST"
  | "CONTEXT_LENGTH_EXCEEDED"
  | "UNAUTHENTICATED"
  | "MODEL_NOT_ALLOWED"
  | "TENANT_NOT_ALLOWED"
  | "MODEL_NOT_FOUND"
  | "RATE_LIMITED"
  | "BUDGET_EXCEEDED"
  | "PROVIDER_RATE_LIMITED"
  | "PROVIDER_TIMEOUT"
  | "PROVIDER_UNAVAILABLE"
  | "CIRCUIT_OPEN"
  | "PROVIDER_REJECTED"
  | "PROVIDER_AUTH_FAILED"
  | "CANCELLED"
  | "INTERNAL"
  | "SHUTTING_DOWN"
  | "MALFORMED_REQUEST"
  | "REQUEST_TOO_LARGE"
  | "UNSUPPORTED_PROTOCOL"
  | "DATABASE_UNAVAILABLE"
  | "OUTPUT_SCHEMA_MISMATCH"
  | "CAPABILITY_NOT_SUPPORTED";

/**
 * A gRPC status code by its canonical name (google.rpc.Code), OK left out: an error never has it.
 * Only `src/rpc/` turns a name into a transport's code, so nothing below the handlers loads Connect.
 */
export type GrpcCode =
  | "CANCELLED"
  | "UNKNOWN"
  | "INVALID_ARGUMENT"
  | "DEADLINE_EXCEEDED"
  | "NOT_FOUND"
  | "ALREADY_EXISTS"
  | "PERMISSION_DENIED"
  | "RESOURCE_EXHAUSTED"
  | "FAILED_PRECONDITION"
  | "ABORTED"
  | "OUT_OF_RANGE"
  | "UNIMPLEMENTED"
  | "INTERNAL"
  | "UNAVAILABLE"
  | "DATA_LOSS"
  | "UNAUTHENTICATED";

export interface ReasonRow {
  /** The gRPC code a client sees. */
  code: GrpcCode;
  /** Whether the router may try the same deployment again. */
  retryable: boolean;
  /** Whether the router may move on to the next deployment or fallback model. */
  fallback: boolean;
  /** Whether the message is replaced by a generic one before it leaves the service. */
  sanitise: boolean;
}

/**
 * The taxonomy, in one table so code, retryability and the client-facing message
 * policy cannot drift apart. Retryability is an explicit column, never a default.
 */
export const TAXONOMY: Readonly<Record<ErrorReason, ReasonRow>> = {
  INVALID_REQUEST: { code: "INVALID_ARGUMENT", retryable: false, fallback: false, sanitise: false },
  CONTEXT_LENGTH_EXCEEDED: { code: "INVALID_ARGUMENT", retryable: false, fallback: true, sanitise: false },
  UNAUTHENTICATED: { code: "UNAUTHENTICATED", retryable: false, fallback: false, sanitise: false },
  MODEL_NOT_ALLOWED: { code: "PERMISSION_DENIED", retryable: false, fallback: false, sanitise: false },
  TENANT_NOT_ALLOWED: { code: "PERMISSION_DENIED", retryable: false, fallback: false, sanitise: false },
  MODEL_NOT_FOUND: { code: "NOT_FOUND", retryable: false, fallback: false, sanitise: false },
  RATE_LIMITED: { code: "RESOURCE_EXHAUSTED", retryable: false, fallback: false, sanitise: false },
  BUDGET_EXCEEDED: { code: "RESOURCE_EXHAUSTED", retryable: false, fallback: false, sanitise: false },
  PROVIDER_RATE_LIMITED: { code: "RESOURCE_EXHAUSTED", retryable: true, fallback: true, sanitise: false },
  PROVIDER_TIMEOUT: { code: "DEADLINE_EXCEEDED", retryable: true, fallback: true, sanitise: false },
  PROVIDER_UNAVAILABLE: { code: "UNAVAILABLE", retryable: true, fallback: true, sanitise: false },
  CIRCUIT_OPEN: { code: "UNAVAILABLE", retryable: false, fallback: true, sanitise: false },
  PROVIDER_REJECTED: { code: "INVALID_ARGUMENT", retryable: false, fallback: false, sanitise: false },
  PROVIDER_AUTH_FAILED: { code: "INTERNAL", retryable: false, fallback: true, sanitise: true },
  CANCELLED: { code: "CANCELLED", retryable: false, fallback: false, sanitise: false },
  INTERNAL: { code: "INTERNAL", retryable: false, fallback: false, sanitise: true },
  SHUTTING_DOWN: { code: "UNAVAILABLE", retryable: false, fallback: false, sanitise: false },
  // Protocol-level refusals, raised before a handler runs (src/server/protocol-errors.ts).
  MALFORMED_REQUEST: { code: "INVALID_ARGUMENT", retryable: false, fallback: false, sanitise: false },
  REQUEST_TOO_LARGE: { code: "RESOURCE_EXHAUSTED", retryable: false, fallback: false, sanitise: false },
  UNSUPPORTED_PROTOCOL: { code: "UNIMPLEMENTED", retryable: false, fallback: false, sanitise: false },
  DATABASE_UNAVAILABLE: { code: "UNAVAILABLE", retryable: false, fallback: false, sanitise: false },
  // The model's answer broke the condition the request set (response_format): not the caller's
  // argument (INVALID_ARGUMENT) nor our outage (UNAVAILABLE, which gRPC retry policies repeat,
  // paying again unasked): FAILED_PRECONDITION, the client decides whether to ask again.
  OUTPUT_SCHEMA_MISMATCH: { code: "FAILED_PRECONDITION", retryable: false, fallback: false, sanitise: false },
  // A provider without the ability asked for (embeddings on Anthropic): another deployment may have it.
  CAPABILITY_NOT_SUPPORTED: { code: "UNIMPLEMENTED", retryable: false, fallback: true, sanitise: false },
};

export const ERROR_REASONS = Object.keys(TAXONOMY) as ErrorReason[];
