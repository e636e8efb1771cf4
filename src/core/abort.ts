import { LlmError } from "../errors/llm-error.js";

/** The LlmError an aborted signal stands for: its reason when that is one, CANCELLED otherwise. */
export function abortReason(signal: AbortSignal): LlmError {
  const reason: unknown = signal.reason;
  if (reason instanceof LlmError) return reason;
  return new LlmError("CANCELLED", "the call was cancelled");
}

/** Resolves after ms, or rejects with abortReason(signal) as soon as the signal fires. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(abortReason(signal));
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortReason(signal));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
