/**
 * The server side of every LlmService call: one SERVER span (continuing the caller's
 * traceparent), the RPC duration and in-flight metrics, and the request id in the context so
 * log lines written during the call carry it. For a server stream the span and the timer cover
 * the whole stream, up to its last message or its error. Health and reflection (grpc.*) are
 * left alone: probes and a health Watch that never ends would only be noise.
 */
import { trace, SpanStatusCode, type Context } from "@opentelemetry/api";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { kClientRequestId, kPrincipal, kRequestId } from "../server/call-values.js";
import { PushQueue } from "../core/push-queue.js";
import type { GatewayMetrics } from "./metrics.js";
import type { Tracing } from "./tracing.js";

/** gRPC status code names, by number (Connect's Code uses the same numbers). */
const CODE_NAMES = [
  "OK",
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
] as const;

/** Codes that mean the server failed (the RPC conventions' list for server spans); the rest are the caller's business. */
const SERVER_FAULTS: ReadonlySet<number> = new Set([Code.Unknown, Code.DeadlineExceeded, Code.Unimplemented, Code.Internal, Code.Unavailable, Code.DataLoss]);

export function codeName(code: number): string {
  return CODE_NAMES[code] ?? "UNKNOWN";
}

/** rpc.system.name by the request's content type: gRPC and gRPC-web are gRPC, the rest is the Connect protocol. */
export function rpcSystemOf(contentType: string | null): "grpc" | "connectrpc" {
  return contentType?.startsWith("application/grpc") ? "grpc" : "connectrpc";
}

const OK = 0;

/** Marks a stream that ended because its consumer stopped reading (the client went away). */
const ABANDONED = Symbol("abandoned");

export function telemetryInterceptor(tracing: Tracing, metrics: GatewayMetrics): Interceptor {
  return (next) => async (req) => {
    const service = req.service.typeName;
    if (service.startsWith("grpc.")) return next(req);
    const method = `${service}/${req.method.name}`;
    const system = rpcSystemOf(req.header.get("content-type"));
    const requestId = req.contextValues.get(kRequestId);
    const clientRequestId = req.contextValues.get(kClientRequestId);
    const parent = tracing.extract(req.header);
    const span = tracing.startServerSpan(
      method,
      {
        "rpc.system.name": system,
        "rpc.method": method,
        // The pre-1.38 names, which many trace backends still key on.
        "rpc.system": system === "grpc" ? "grpc" : "connect_rpc",
        "rpc.service": service,
        "llm.request_id": requestId,
        ...(clientRequestId !== "" ? { "llm.client_request_id": clientRequestId } : {}),
      },
      parent,
    );
    const ctx: Context = tracing.withRequestId(trace.setSpan(parent, span), requestId, clientRequestId);
    const countOut = metrics.rpcStarted(system, method);

    let finished = false;
    const finish = (outcome: unknown) => {
      if (finished) return;
      finished = true;
      const code = outcome === undefined ? OK : outcome === ABANDONED ? Code.Canceled : ConnectError.from(outcome).code;
      const name = codeName(code);
      countOut(name);
      if (!span.isRecording()) return;
      const principal = req.contextValues.get(kPrincipal);
      span.setAttributes({
        "rpc.status_code": name,
        ...(system === "grpc" ? { "rpc.grpc.status_code": code } : {}),
        ...(principal ? { "llm.tenant": principal.tenant, "llm.key_id": principal.keyId } : {}),
      });
      if (code !== 0) span.setAttribute("error.type", name);
      if (SERVER_FAULTS.has(code)) span.setStatus({ code: SpanStatusCode.ERROR, message: name });
      span.end();
    };

    let res;
    try {
      res = await tracing.with(ctx, () => next(req));
    } catch (err) {
      finish(err);
      throw err;
    }
    if (!res.stream) {
      finish(undefined);
      return res;
    }
    const message: unknown = res.message;
    if (message instanceof PushQueue) {
      // The gateway's own stream: its work was started inside the call's context (above), so no
      // layer is needed to carry that context; the queue says when and how the stream ended.
      message.whenSettled((outcome) => tracing.with(ctx, () => finish(outcome.abandoned ? ABANDONED : outcome.error)));
      return res;
    }
    return { ...res, message: instrumented(tracing, ctx, res.message, finish) };
  };
}

/** The response stream, each step run in the call's context; `finish` once it ends, fails or is abandoned. One generator layer. */
async function* instrumented<T>(tracing: Tracing, ctx: Context, source: AsyncIterable<T>, finish: (outcome: unknown) => void): AsyncGenerator<T, void, undefined> {
  const it = source[Symbol.asyncIterator]();
  let outcome: unknown = ABANDONED;
  try {
    for (;;) {
      const step = await tracing.with(ctx, () => it.next());
      if (step.done) {
        outcome = undefined;
        return;
      }
      yield step.value;
    }
  } catch (err) {
    outcome = err;
    throw err;
  } finally {
    try {
      // The consumer stopped reading (the client went away): let the handler clean up, in the call's context.
      if (outcome === ABANDONED) await tracing.with(ctx, () => it.return?.());
    } finally {
      tracing.with(ctx, () => finish(outcome));
    }
  }
}
