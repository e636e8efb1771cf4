/**
 * `@llm-service/sdk` for Node: clients over connect-node, which speaks all three protocols
 * (gRPC needs HTTP/2, which node:http2 provides; h2c for http:// URLs).
 */
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import type { Transport } from "@connectrpc/connect";
import { buildClient, type TransportSettings } from "./client.js";
import type { LlmClient, LlmClientOptions } from "./options.js";

export * from "./common.js";

/**
 * A client of llm.v1.LlmService with the API key, a default deadline and the chosen protocol:
 *
 *     const llm = createLlmClient({ baseUrl: "http://127.0.0.1:8080", apiKey: process.env.LLM_API_KEY });
 *     const res = await llm.generate({ model: "sim/echo", messages: [{ role: Role.USER, content: "hi" }] });
 */
export function createLlmClient(options: LlmClientOptions): LlmClient {
  return buildClient(options, nodeTransport);
}

function nodeTransport(s: TransportSettings, options: LlmClientOptions): Transport {
  const common = {
    baseUrl: s.baseUrl,
    interceptors: s.interceptors,
    ...(s.defaultTimeoutMs !== undefined ? { defaultTimeoutMs: s.defaultTimeoutMs } : {}),
  };
  switch (s.protocol) {
    case "grpc":
      return createGrpcTransport(common);
    case "grpc-web":
      return createGrpcWebTransport({ ...common, httpVersion: options.httpVersion ?? "1.1", useBinaryFormat: s.useBinaryFormat });
    case "connect":
      return createConnectTransport({ ...common, httpVersion: options.httpVersion ?? "1.1", useBinaryFormat: s.useBinaryFormat });
  }
}
