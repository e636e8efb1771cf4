/**
 * What a call ended with, as data a test can count: the response, or the ConnectError with its
 * google.rpc details decoded (ErrorInfo, QuotaFailure, RetryInfo, BadRequest).
 */
import { ConnectError } from "@connectrpc/connect";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  QuotaFailureSchema,
  RetryInfoSchema,
  type BadRequest,
  type ErrorInfo,
  type QuotaFailure,
  type RetryInfo,
} from "../../gen/ts/google/rpc/error_details_pb.js";

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: ConnectError };

/** Never rejects: the value, or the error as a ConnectError. */
export async function outcome<T>(call: Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await call };
  } catch (err) {
    return { ok: false, error: ConnectError.from(err) };
  }
}

/** The error of a call that must fail. */
export async function rejection(call: Promise<unknown>): Promise<ConnectError> {
  const result = await outcome(call);
  if (result.ok) throw new Error("expected the call to fail, it succeeded");
  return result.error;
}

export interface ErrorDetails {
  info: ErrorInfo | undefined;
  quota: QuotaFailure | undefined;
  retry: RetryInfo | undefined;
  badRequest: BadRequest | undefined;
}

export function detailsOf(err: ConnectError): ErrorDetails {
  return {
    info: err.findDetails(ErrorInfoSchema)[0],
    quota: err.findDetails(QuotaFailureSchema)[0],
    retry: err.findDetails(RetryInfoSchema)[0],
    badRequest: err.findDetails(BadRequestSchema)[0],
  };
}

/** The ErrorInfo reason of a failed call ("" when it has none). */
export function reasonOf(err: ConnectError): string {
  return err.findDetails(ErrorInfoSchema)[0]?.reason ?? "";
}
