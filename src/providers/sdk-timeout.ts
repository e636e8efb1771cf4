/**
 * An attempt's time budget as the vendor SDKs take it: whole milliseconds, at least 1.
 *
 * A deadline sent in microseconds or nanoseconds (grpc-go writes `19999984u`) leaves the attempt a
 * fraction of a millisecond over; the openai and anthropic SDKs refuse a `timeout` that is not an
 * integer (the call failed with INTERNAL). Rounding up keeps the SDK's timer at or after the
 * router's own, which fires at the exact budget and gives the deadline its right reason.
 */
export function sdkTimeoutMs(timeoutMs: number): number {
  return Number.isFinite(timeoutMs) ? Math.max(1, Math.ceil(timeoutMs)) : 1;
}
