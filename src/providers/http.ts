/**
 * HTTP plumbing shared by the provider adapters, one concept a file under providers/http/:
 * the pooled `fetch` the vendor SDKs are given (on undici), the web-stream adapter for Node
 * bodies, Retry-After parsing, the operator-defined extra headers of a deployment, and
 * upstream failures as LlmErrors.
 */
export { createHttpFetch, type FetchFunction, type HttpFetch, type HttpFetchOptions } from "./http/pooled-fetch.js";
export { webStream } from "./http/web-stream.js";
export { parseDurationMs, parseRetryAfter, parseRetryAfterValue, type HeaderSource } from "./http/retry-after.js";
export { deploymentHeaders, HEADER_OPTION_PREFIX } from "./http/deployment-headers.js";
export { isWireFailure, reasonForStatus, statusMessage, upstreamError, type UpstreamFailure } from "./http/upstream-error.js";
