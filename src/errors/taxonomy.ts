import { Code } from "@connectrpc/connect";

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
  | "DATABASE_UNAVAILABLE";

export interface ReasonRow {
  /** The gRPC code a client sees. */
  code: Code;
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
  INVALID_REQUEST: { code: Code.InvalidArgument, retryable: false, fallback: false, sanitise: false },
  CONTEXT_LENGTH_EXCEEDED: { code: Code.InvalidArgument, retryable: false, fallback: true, sanitise: false },
  UNAUTHENTICATED: { code: Code.Unauthenticated, retryable: false, fallback: false, sanitise: false },
  MODEL_NOT_ALLOWED: { code: Code.PermissionDenied, retryable: false, fallback: false, sanitise: false },
  TENANT_NOT_ALLOWED: { code: Code.PermissionDenied, retryable: false, fallback: false, sanitise: false },
  MODEL_NOT_FOUND: { code: Code.NotFound, retryable: false, fallback: false, sanitise: false },
  RATE_LIMITED: { code: Code.ResourceExhausted, retryable: false, fallback: false, sanitise: false },
  BUDGET_EXCEEDED: { code: Code.ResourceExhausted, retryable: false, fallback: false, sanitise: false },
  PROVIDER_RATE_LIMITED: { code: Code.ResourceExhausted, retryable: true, fallback: true, sanitise: false },
  PROVIDER_TIMEOUT: { code: Code.DeadlineExceeded, retryable: true, fallback: true, sanitise: false },
  PROVIDER_UNAVAILABLE: { code: Code.Unavailable, retryable: true, fallback: true, sanitise: false },
  CIRCUIT_OPEN: { code: Code.Unavailable, retryable: false, fallback: true, sanitise: false },
  PROVIDER_REJECTED: { code: Code.InvalidArgument, retryable: false, fallback: false, sanitise: false },
  PROVIDER_AUTH_FAILED: { code: Code.Internal, retryable: false, fallback: true, sanitise: true },
  CANCELLED: { code: Code.Canceled, retryable: false, fallback: false, sanitise: false },
  INTERNAL: { code: Code.Internal, retryable: false, fallback: false, sanitise: true },
  SHUTTING_DOWN: { code: Code.Unavailable, retryable: false, fallback: false, sanitise: false },
  // Protocol-level refusals, raised before a handler runs (src/server/protocol-errors.ts).
  MALFORMED_REQUEST: { code: Code.InvalidArgument, retryable: false, fallback: false, sanitise: false },
  REQUEST_TOO_LARGE: { code: Code.ResourceExhausted, retryable: false, fallback: false, sanitise: false },
  UNSUPPORTED_PROTOCOL: { code: Code.Unimplemented, retryable: false, fallback: false, sanitise: false },
  DATABASE_UNAVAILABLE: { code: Code.Unavailable, retryable: false, fallback: false, sanitise: false },
};

export const ERROR_REASONS = Object.keys(TAXONOMY) as ErrorReason[];
