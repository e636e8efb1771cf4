/**
 * The call's deadline from its header: gRPC's `grpc-timeout` (up to 8 digits and a unit) and Connect's
 * `connect-timeout-ms` (up to 10 digits). Refusals are connect's, word for word: a malformed value, and
 * one over the server's maximum (which still reports the value asked for).
 */
import { Code, ConnectError } from "@connectrpc/connect";

export interface ParsedTimeout {
  timeoutMs?: number;
  error?: ConnectError;
}

const GRPC_UNIT_MS: Record<string, number> = { H: 60 * 60 * 1000, M: 60 * 1000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

export function parseGrpcTimeout(value: string | null | undefined, maxTimeoutMs: number): ParsedTimeout {
  if (value === null || value === undefined) return {};
  const match = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (match === null) return { error: new ConnectError(`protocol error: invalid grpc timeout value: ${value}`, Code.InvalidArgument) };
  const timeoutMs = (GRPC_UNIT_MS[match[2] as string] as number) * parseInt(match[1] as string, 10);
  return withinMaximum(timeoutMs, maxTimeoutMs);
}

export function parseConnectTimeout(value: string | null | undefined, maxTimeoutMs: number): ParsedTimeout {
  if (value === null || value === undefined) return {};
  if (!/^\d{1,10}$/.test(value)) return { error: new ConnectError(`protocol error: invalid connect timeout value: ${value}`, Code.InvalidArgument) };
  return withinMaximum(parseInt(value, 10), maxTimeoutMs);
}

function withinMaximum(timeoutMs: number, maxTimeoutMs: number): ParsedTimeout {
  if (timeoutMs > maxTimeoutMs) return { timeoutMs, error: new ConnectError(`timeout ${timeoutMs}ms must be <= ${maxTimeoutMs}`, Code.InvalidArgument) };
  return { timeoutMs };
}
