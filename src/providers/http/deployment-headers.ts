/** Operator-defined extra request headers of a deployment (`options["header:<name>"]`). */
import type { DeploymentConfig } from "../../config.js";

/** The prefix of a deployment option that names an extra request header: `header:HTTP-Referer`. */
export const HEADER_OPTION_PREFIX = "header:";

/**
 * Headers an operator may not set this way: credentials belong in `apiKeyEnv` (so they never
 * sit in the catalogue file), and framing headers would corrupt the request.
 */
const FORBIDDEN_HEADERS = new Set([
  "authorization",
  "x-api-key",
  "api-key",
  "proxy-authorization",
  "host",
  "content-length",
  "content-type",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "upgrade",
  "te",
  "trailer",
]);

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * Operator-defined extra request headers of a deployment (its `options["header:<name>"]`),
 * for endpoints that want them (OpenRouter's HTTP-Referer and X-Title, a proxy's routing
 * header, the simulator's `x-sim-*` knobs). They come from the catalogue only, never from a
 * request. Credential and framing headers, invalid names and values with line breaks are skipped.
 */
export function deploymentHeaders(deployment: DeploymentConfig): Record<string, string> | undefined {
  let headers: Record<string, string> | undefined;
  for (const key in deployment.options) {
    if (!key.startsWith(HEADER_OPTION_PREFIX)) continue;
    const name = key.slice(HEADER_OPTION_PREFIX.length).trim();
    const value = String(deployment.options[key]);
    if (!TOKEN.test(name) || FORBIDDEN_HEADERS.has(name.toLowerCase()) || /[\r\n\0]/.test(value)) continue;
    (headers ??= {})[name] = value;
  }
  return headers;
}
