import { randomUUID } from "node:crypto";
import type { ConnectError, Interceptor } from "@connectrpc/connect";
import type { KeyAuthenticator } from "../core/types.js";
import { LlmError } from "../errors/llm-error.js";
import { toConnectError } from "../errors/to-connect.js";
import type { Logger } from "../telemetry/logger.js";
import { Tracing } from "../telemetry/tracing.js";
import { kPrincipal, kRequestId } from "./call-values.js";

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * A refusal from an interceptor, before any handler ran: it carries x-request-id itself (error
 * metadata goes out as response headers or trailers), as handled calls do via their response header.
 */
function refusal(error: ConnectError, requestId: string): ConnectError {
  if (requestId !== "") error.metadata.set("x-request-id", requestId);
  return error;
}

/** Uses the caller's x-request-id when well-formed, a new uuid otherwise. */
export const requestIdInterceptor: Interceptor = (next) => (req) => {
  const given = req.header.get("x-request-id");
  req.contextValues.set(kRequestId, given && REQUEST_ID.test(given) ? given : randomUUID());
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
      const requestId = req.contextValues.get(kRequestId);
      throw refusal(toConnectError(new LlmError("SHUTTING_DOWN", "the server is shutting down; retry on another replica")), requestId);
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

/** Resolves the API key of every LlmService call to a principal; other services (health, reflection) are open. */
export function authInterceptor(keys: KeyAuthenticator, logger: Logger, tracing: Tracing = Tracing.disabled): Interceptor {
  return (next) => async (req) => {
    if (req.service.typeName !== "llm.v1.LlmService") return next(req);
    const requestId = req.contextValues.get(kRequestId);
    const secret = bearer(req.header);
    if (!secret) {
      throw refusal(
        toConnectError(new LlmError("UNAUTHENTICATED", "missing API key: send authorization: Bearer <key> or x-api-key"), requestId),
        requestId,
      );
    }
    const principal = await tracing.inSpan("auth", {}, async (span) => {
      const found = await keys.authenticate(secret);
      if (found) span.setAttributes({ "llm.tenant": found.tenant, "llm.key_id": found.keyId });
      else tracing.fail(span, new LlmError("UNAUTHENTICATED", "unknown, revoked or expired API key"));
      return found;
    });
    if (!principal) {
      logger.warn("rejected an unknown, revoked or expired API key", { requestId, method: req.method.name });
      throw refusal(toConnectError(new LlmError("UNAUTHENTICATED", "unknown, revoked or expired API key"), requestId), requestId);
    }
    req.contextValues.set(kPrincipal, principal);
    return next(req);
  };
}
