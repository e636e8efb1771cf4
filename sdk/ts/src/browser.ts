/**
 * `@llm-service/sdk` for browsers (and any runtime with fetch): clients over connect-web,
 * Connect or gRPC-web. The service must list the page's origin in CORS_ORIGINS unless it
 * serves the page itself.
 */
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import type { Transport } from "@connectrpc/connect";
import { buildClient, type TransportSettings } from "./client.js";
import type { LlmClient, LlmClientOptions } from "./options.js";

export * from "./common.js";

/**
 * A client of llm.v1.LlmService with the API key, a default deadline and the chosen protocol:
 *
 *     const llm = createLlmClient({ baseUrl: location.origin, apiKey, protocol: "grpc-web" });
 *     for await (const { event } of llm.streamGenerate({ model: "sim/lorem", messages })) { … }
 */
export function createLlmClient(options: LlmClientOptions): LlmClient {
  return buildClient(options, webTransport);
}

function webTransport(s: TransportSettings, options: LlmClientOptions): Transport {
  const common = {
    baseUrl: s.baseUrl,
    interceptors: s.interceptors,
    useBinaryFormat: s.useBinaryFormat,
    ...(s.defaultTimeoutMs !== undefined ? { defaultTimeoutMs: s.defaultTimeoutMs } : {}),
    ...(options.fetch ? { fetch: options.fetch } : {}),
  };
  switch (s.protocol) {
    case "grpc":
      throw new TypeError('protocol "grpc" needs HTTP/2 trailers, which fetch cannot read: use "connect" or "grpc-web" in a browser');
    case "grpc-web":
      return createGrpcWebTransport(common);
    case "connect":
      return createConnectTransport(common);
  }
}
