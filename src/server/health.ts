import { Code, ConnectError } from "@connectrpc/connect";
import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import {
  Health,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "../../gen/ts/grpc/health/v1/health_pb.js";

export { ServingStatus };

/** Called with a service's new status each time it changes. */
export type HealthListener = (status: ServingStatus) => void;

/**
 * The serving status of the server ("") and of each registered service, per
 * the gRPC health checking protocol. Every name given to the constructor, and
 * the server itself, starts SERVING.
 */
export class HealthState {
  private readonly statuses = new Map<string, ServingStatus>();
  private readonly listeners = new Map<string, Set<HealthListener>>();
  private watchesEnded = false;

  constructor(serviceNames: Iterable<string> = []) {
    this.statuses.set("", ServingStatus.SERVING);
    for (const name of serviceNames) {
      this.statuses.set(name, ServingStatus.SERVING);
    }
  }

  /** The status of a service, or undefined when no service of that name is known. */
  get(service: string): ServingStatus | undefined {
    return this.statuses.get(service);
  }

  /** Sets (and registers, if new) a service's status; listeners hear of actual changes only. */
  set(service: string, status: ServingStatus): void {
    if (this.statuses.get(service) === status) {
      return;
    }
    this.statuses.set(service, status);
    for (const listener of [...(this.listeners.get(service) ?? [])]) {
      listener(status);
    }
  }

  /** Sets every known service, and the server itself, to one status (NOT_SERVING when draining). */
  setAll(status: ServingStatus): void {
    for (const service of [...this.statuses.keys()]) {
      this.set(service, status);
    }
  }

  /**
   * Ends every Watch, and any opened later, with UNAVAILABLE: the server is going away. A Watch
   * never ends by itself, and its connection cannot close while it is open (the drain calls this
   * once the calls in flight are done).
   */
  endWatches(): void {
    this.watchesEnded = true;
    for (const [service, set] of [...this.listeners]) {
      for (const listener of [...set]) listener(this.statuses.get(service) ?? ServingStatus.SERVICE_UNKNOWN);
    }
  }

  /** Whether endWatches() was called. */
  get ended(): boolean {
    return this.watchesEnded;
  }

  /** Listens for changes of one service's status; returns the function that stops listening. */
  subscribe(service: string, listener: HealthListener): () => void {
    let set = this.listeners.get(service);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(service, set);
    }
    set.add(listener);
    return () => {
      const current = this.listeners.get(service);
      if (current === undefined) {
        return;
      }
      current.delete(listener);
      if (current.size === 0) {
        this.listeners.delete(service);
      }
    };
  }

  /** How many listeners are subscribed, over all services (for leak checks). */
  get listenerCount(): number {
    let count = 0;
    for (const set of this.listeners.values()) {
      count += set.size;
    }
    return count;
  }
}

/**
 * Yields a service's status now (SERVICE_UNKNOWN when it is not known) and
 * again each time it changes, until the signal aborts. A slow reader sees the
 * latest status, not every intermediate one, as grpc-go's Watch does.
 */
async function* watchStatus(state: HealthState, service: string, signal: AbortSignal): AsyncGenerator<ServingStatus> {
  let pending: ServingStatus | undefined = state.get(service) ?? ServingStatus.SERVICE_UNKNOWN;
  let wake: (() => void) | undefined;
  const notify = (): void => {
    wake?.();
    wake = undefined;
  };
  const unsubscribe = state.subscribe(service, (status) => {
    pending = status;
    notify();
  });
  // Unsubscribe on abort itself: a generator suspended at a yield that nobody
  // resumes (the transport stops pulling when the call ends) never reaches
  // its finally block.
  const stop = (): void => {
    unsubscribe();
    notify();
  };
  signal.addEventListener("abort", stop);
  let last: ServingStatus | undefined;
  try {
    while (!signal.aborted) {
      if (pending === undefined || pending === last) {
        // Ended only once the latest status went out (NOT_SERVING, when draining).
        if (state.ended) throw new ConnectError("the server is shutting down", Code.Unavailable);
        pending = undefined;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        continue;
      }
      last = pending;
      pending = undefined;
      yield last;
    }
  } finally {
    unsubscribe();
    signal.removeEventListener("abort", stop);
  }
}

/** The grpc.health.v1.Health implementation over a HealthState. */
export function healthService(state: HealthState): ServiceImpl<typeof Health> {
  return {
    check(request) {
      const status = state.get(request.service);
      if (status === undefined) {
        throw new ConnectError(`unknown service ${JSON.stringify(request.service)}`, Code.NotFound);
      }
      return { status };
    },
    async *watch(request, ctx) {
      for await (const status of watchStatus(state, request.service, ctx.signal)) {
        yield { status };
      }
      // The loop ends only when the call does: at its deadline that is DEADLINE_EXCEEDED, not OK.
      if (ctx.signal.aborted) throw ConnectError.from(ctx.signal.reason);
    },
  };
}

/** Routes serving grpc.health.v1.Health from the given state. */
export function healthRoutes(state: HealthState): (router: ConnectRouter) => void {
  return (router) => {
    router.service(Health, healthService(state));
  };
}
