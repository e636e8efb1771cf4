/** What both entry points (Node and browser) export besides createLlmClient. */
export * from "./generated.js";
export { apiKeyInterceptor, DEFAULT_TIMEOUT_MS } from "./client.js";
export { badRequestOf, codeName, errorInfoOf, quotaFailureOf, retryDelayMsOf, retryInfoOf } from "./errors.js";
export type { ApiKeySource, LlmClient, LlmClientOptions, LlmProtocol } from "./options.js";
// The same ConnectError and Code the client throws, so `instanceof` and comparisons hold.
export { Code, ConnectError } from "@connectrpc/connect";
export type { CallOptions, Client, Interceptor, Transport } from "@connectrpc/connect";
