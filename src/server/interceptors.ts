import { randomUUID } from "node:crypto";
import type { ConnectError, ContextValues, Interceptor } from "@connectrpc/connect";
import type { KeyAuthenticator } from "../core/types.js";
import { asLlmError, invalidRequest, LlmError } from "../errors/llm-error.js";
import { toConnectError } from "../rpc/to-connect.js";
import { throttledWarn, type Logger } from "../telemetry/logger.js";
import { Tracing } from "../telemetry/tracing.js";
import { kClientRequestId, kPrincipal, kRequestId, setRequestIdHeaders, wellFormedClientRequestId } from "./call-values.js";

/**
 * A refusal from an interceptor, before any handler ran: it carries x-request-id (and the caller's
 * x-client-request-id) itself, since error metadata goes out as response headers or trailers, as
 * handled calls do via their response header.
 */
function refusal(err: LlmError, values: ContextValues): ConnectError {
  const error = toConnectError(err, values.get(kRequestId), values.get(kClientRequestId));
  setRequestIdHeaders(error.metadata, values);
  return error;
}

/**
 * Gives every call a request id of the server's own (`newId`, a uuid by default), whatever the
 * caller sends: the ledger's key for the call, so no caller can choose it. The caller's
 * x-request-id, when well-formed, is kept apart as a correlation id (see clientRequestIdInterceptor).
 */
export function requestIdInterceptor(newId: () => string = randomUUID): Interceptor {
  return (next) => (req) => {
    req.contextValues.set(kRequestId, newId());
    const given = wellFormedClientRequestId(req.header.get("x-request-id"));
    if (given !== undefined) req.contextValues.set(kClientRequestId, given);
    return next(req);
  };
}

/**
 * Refuses an LlmService call whose x-request-id is malformed (INVALID_ARGUMENT with a BadRequest),
 * rather than serving it with the caller's correlation id silently dropped. Sits inside the
 * telemetry interceptor, so the refusal is counted and traced.
 */
export const clientRequestIdInterceptor: Interceptor = (next) => (req) => {
  if (req.service.typeName === "llm.v1.LlmService") {
    const given = req.header.get("x-request-id");
    if (given !== null && req.contextValues.get(kClientRequestId) !== given) {
      throw refusal(
        invalidRequest([{ field: "x-request-id", description: "must be 1 to 128 printable ASCII characters (U+0021 to U+007E, and inner spaces)" }]),
        req.contextValues,
      );
    }
  }
  return next(req);
};

/**
 * Refuses new calls once draining. Health and reflection (grpc.*) stay open.
 * Calls in flight are counted by the HTTP handler (see app.ts), which alone
 * sees when a response has been fully written.
 */
export function drainInterceptor(state: { draining: boolean }): Interceptor {
  return (next) => async (req) => {
    if (state.draining && !req.service.typeName.startsWith("grpc.")) {
      throw refusal(new LlmError("SHUTTING_DOWN", "the server is shutting down; retry on another replica"), req.contextValues);
    }
    return next(req);
  };
}

function bearer(header: Headers): string | undefined {
  const auth = header.get("authorization");
  if (auth) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    return m?.[1];
  }
  return header.get("x-api-key")?.trim() || undefined;
}

/**
 * Resolves the API key of every LlmService call to a principal; other services (health, reflection) are open.
 * A key that cannot be checked (the database is down and the key is not cached) is refused with the
 * store's error (UNAVAILABLE with RetryInfo), never a bare INTERNAL.
 */
export function authInterceptor(keys: KeyAuthenticator, logger: Logger, tracing: Tracing = Tracing.disabled): Interceptor {
  // During an outage every uncached key fails: one line per interval, with a count of the rest.
  const warnOften = throttledWarn(logger);
  return (next) => async (req) => {
    if (req.service.typeName !== "llm.v1.LlmService") return next(req);
    const requestId = req.contextValues.get(kRequestId);
    const secret = bearer(req.header);
    if (!secret) {
      throw refusal(new LlmError("UNAUTHENTICATED", "missing API key: send authorization: Bearer <key> or x-api-key"), req.contextValues);
    }
    let principal;
    try {
      principal = await tracing.inSpan("auth", {}, async (span) => {
        const found = await keys.authenticate(secret);
        if (found) span.setAttributes({ "llm.tenant": found.tenant, "llm.key_id": found.keyId });
        else tracing.fail(span, new LlmError("UNAUTHENTICATED", "unknown, revoked or expired API key"));
        return found;
      });
    } catch (err) {
      const error = asLlmError(err);
      const cause = error.cause instanceof Error ? error.cause.message : undefined;
      warnOften("could not check an API key", { requestId, method: req.method.name, reason: error.reason, ...(cause ? { error: cause } : {}) });
      throw refusal(error, req.contextValues);
    }
    if (!principal) {
      const clientRequestId = req.contextValues.get(kClientRequestId);
      logger.warn("rejected an unknown, revoked or expired API key", {
        requestId,
        ...(clientRequestId !== "" ? { clientRequestId } : {}),
        method: req.method.name,
      });
      throw refusal(new LlmError("UNAUTHENTICATED", "unknown, revoked or expired API key"), req.contextValues);
    }
    req.contextValues.set(kPrincipal, principal);
    return next(req);
  };
}
