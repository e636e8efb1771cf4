import { Code, ConnectError } from "@connectrpc/connect";
import {
  ErrorInfoSchema,
  QuotaFailureSchema,
  RetryInfoSchema,
  BadRequestSchema,
  type BadRequest,
  type ErrorInfo,
  type QuotaFailure,
  type RetryInfo,
} from "../../../gen/ts/google/rpc/error_details_pb.js";

/**
 * Shortcuts over `ConnectError.findDetails`, which stays the general way to read details
 * (`ConnectError.from(err).findDetails(ErrorInfoSchema)`). Each takes anything a call threw.
 */

/** The google.rpc.ErrorInfo every error of the service carries: `reason`, `domain`, `metadata.request_id`. */
export function errorInfoOf(err: unknown): ErrorInfo | undefined {
  return ConnectError.from(err).findDetails(ErrorInfoSchema)[0];
}

/** The google.rpc.RetryInfo of a RESOURCE_EXHAUSTED (rate limits) or UNAVAILABLE error, when the service sent one. */
export function retryInfoOf(err: unknown): RetryInfo | undefined {
  return ConnectError.from(err).findDetails(RetryInfoSchema)[0];
}

/** RetryInfo's retry_delay in milliseconds, or undefined when the error carries no RetryInfo. */
export function retryDelayMsOf(err: unknown): number | undefined {
  const delay = retryInfoOf(err)?.retryDelay;
  if (!delay) return undefined;
  return Number(delay.seconds) * 1000 + Math.round(delay.nanos / 1e6);
}

/** The google.rpc.QuotaFailure of a RATE_LIMITED or BUDGET_EXCEEDED error. */
export function quotaFailureOf(err: unknown): QuotaFailure | undefined {
  return ConnectError.from(err).findDetails(QuotaFailureSchema)[0];
}

/** The google.rpc.BadRequest of an INVALID_ARGUMENT error: which fields were wrong and why. */
export function badRequestOf(err: unknown): BadRequest | undefined {
  return ConnectError.from(err).findDetails(BadRequestSchema)[0];
}

/** The gRPC name of a code, as the service's docs and other languages' SDKs spell it: Code.ResourceExhausted → "RESOURCE_EXHAUSTED". */
export function codeName(code: Code): string {
  if (code === Code.Canceled) return "CANCELLED"; // connect-es spells it the American way
  const name = Code[code] as string | undefined;
  return name === undefined ? String(code) : name.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}
