import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { deadlineSignal } from "../core/deadline-signal.js";
import type { CallContext } from "../core/types.js";
import { LlmError } from "../errors/llm-error.js";
import { kClientRequestId, kPrincipal, kRequestId, setRequestIdHeaders } from "../server/call-values.js";

/**
 * Turns Connect's handler context into the core's CallContext: the principal,
 * the server's request id (sent as x-request-id) and the caller's correlation id (its
 * x-request-id, echoed as x-client-request-id), an absolute deadline (the client's, or
 * the configured default), and a signal whose reason says why it fired:
 * PROVIDER_TIMEOUT at the deadline, CANCELLED when the client went away.
 */
export function callContext(ctx: HandlerContext, defaultDeadlineMs: number): { call: CallContext; dispose(): void } {
  const principal = ctx.values.get(kPrincipal);
  if (!principal) throw new LlmError("UNAUTHENTICATED", "missing API key");
  const requestId = ctx.values.get(kRequestId);
  const clientRequestId = ctx.values.get(kClientRequestId);
  setRequestIdHeaders(ctx.responseHeader, ctx.values);

  const timeoutMs = ctx.timeoutMs();
  const deadline = Date.now() + (timeoutMs ?? defaultDeadlineMs);
  const deadlineError = () => new LlmError("PROVIDER_TIMEOUT", "deadline exceeded");
  const signal = deadlineSignal({
    parent: ctx.signal,
    // Connect enforces a client deadline itself; the configured default needs our own timer.
    ...(timeoutMs === undefined ? { timeoutMs: defaultDeadlineMs } : {}),
    expired: deadlineError,
    followReason: (reason) =>
      (reason instanceof ConnectError && reason.code === Code.DeadlineExceeded) || Date.now() >= deadline - 1
        ? deadlineError()
        : new LlmError("CANCELLED", "the client cancelled the call"),
  });

  return {
    call: { requestId, ...(clientRequestId !== "" ? { clientRequestId } : {}), principal, signal: signal.signal, deadline },
    dispose: signal.dispose,
  };
}
