/** A signal that follows a parent signal and fires on its own at a deadline, and how to let go of it. */
export interface DeadlineSignal {
  readonly signal: AbortSignal;
  /** Aborts the signal now (an early end the owner decides on); nothing if it has already fired. */
  abort(reason: unknown): void;
  /** Stops the timer and stops following the parent. The signal keeps whatever state it has. */
  dispose(): void;
}

export interface DeadlineSignalOptions {
  /** The signal to follow: when it fires, so does this one, with `followReason(parent.reason)`. */
  parent?: AbortSignal;
  /** Milliseconds until the deadline (0 or less: already passed, it fires at once); undefined for none. */
  timeoutMs?: number;
  /** The reason the signal carries when the deadline passes. */
  expired: () => unknown;
  /** The reason carried when the parent fires; by default the parent's own. */
  followReason?: (reason: unknown) => unknown;
}

/**
 * The one way a call, an attempt or an upstream request gets its deadline signal: it fires at the
 * deadline with `expired()`, or when the parent fires with the parent's reason, whichever comes first.
 * Always `dispose()` it when the work ends, so no timer or listener outlives the work.
 */
export function deadlineSignal(options: DeadlineSignalOptions): DeadlineSignal {
  const controller = new AbortController();
  const { parent, timeoutMs, expired } = options;
  const followReason = options.followReason ?? ((reason: unknown) => reason);
  const onAbort = () => {
    if (!controller.signal.aborted) controller.abort(followReason(parent?.reason));
  };
  const onExpired = () => {
    if (!controller.signal.aborted) controller.abort(expired());
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  if (timeoutMs !== undefined && timeoutMs <= 0) onExpired();
  else if (timeoutMs !== undefined) timer = setTimeout(onExpired, timeoutMs);
  if (parent?.aborted) onAbort();
  else parent?.addEventListener("abort", onAbort, { once: true });
  return {
    signal: controller.signal,
    abort(reason) {
      if (!controller.signal.aborted) controller.abort(reason);
    },
    dispose() {
      if (timer !== undefined) clearTimeout(timer);
      parent?.removeEventListener("abort", onAbort);
    },
  };
}
