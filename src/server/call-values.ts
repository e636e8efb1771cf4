import { createContextKey, type ContextValues } from "@connectrpc/connect";
import type { Principal } from "../core/types.js";

/** The caller, set by the auth interceptor for LlmService calls. */
export const kPrincipal = createContextKey<Principal | undefined>(undefined, { description: "principal" });

/**
 * The call's request id: a uuid the server generates for every call, whatever the caller sends.
 * It is the ledger row's key, the response's `id` and the `x-request-id` response header.
 */
export const kRequestId = createContextKey<string>("", { description: "request id" });

/**
 * The caller's own `x-request-id`, when it sent a well-formed one ("" otherwise): a correlation
 * id only, never unique and never a key. Stored in the ledger row (`client_request_id`), logged,
 * and echoed as the `x-client-request-id` response header.
 */
export const kClientRequestId = createContextKey<string>("", { description: "client request id" });

/** A caller's x-request-id: 1 to 128 printable ASCII characters, not starting with a space. */
const CLIENT_REQUEST_ID = /^[\x21-\x7E][\x20-\x7E]{0,127}$/;

/** The caller's x-request-id when it is well-formed (kept as the correlation id), undefined otherwise. */
export function wellFormedClientRequestId(given: string | null | undefined): string | undefined {
  return given !== null && given !== undefined && CLIENT_REQUEST_ID.test(given) ? given : undefined;
}

/** The response header that echoes the caller's x-request-id (x-request-id itself carries the server's id). */
export const CLIENT_REQUEST_ID_HEADER = "x-client-request-id";

/** Sets the call's ids on response (or error) headers: x-request-id, and x-client-request-id when the caller sent one. */
export function setRequestIdHeaders(headers: Headers, values: ContextValues): void {
  const requestId = values.get(kRequestId);
  if (requestId !== "") headers.set("x-request-id", requestId);
  const clientRequestId = values.get(kClientRequestId);
  if (clientRequestId !== "") headers.set(CLIENT_REQUEST_ID_HEADER, clientRequestId);
}
