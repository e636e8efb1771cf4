import { createContextKey } from "@connectrpc/connect";
import type { Principal } from "../core/types.js";

/** The caller, set by the auth interceptor for LlmService calls. */
export const kPrincipal = createContextKey<Principal | undefined>(undefined, { description: "principal" });

/** The request id: the caller's x-request-id when well-formed, a new uuid otherwise. */
export const kRequestId = createContextKey<string>("", { description: "request id" });
