import type { Client, Interceptor, Transport } from "@connectrpc/connect";
import type { LlmService } from "../../../gen/ts/llm/v1/llm_service_pb.js";

/** The wire protocols the service speaks on its one port. Browsers can use "connect" and "grpc-web". */
export type LlmProtocol = "connect" | "grpc" | "grpc-web";

/** The API key, or a function asked for it before each call (for keys that rotate). */
export type ApiKeySource = string | (() => string | Promise<string>);

/** The generated client: one method per RPC, typed by the generated messages. */
export type LlmClient = Client<typeof LlmService>;

export interface LlmClientOptions {
  /**
   * Where the service listens, e.g. `http://127.0.0.1:8080` (h2c and HTTP/1.1 share the port).
   * In a browser, `location.origin` (or "/") for a page the service serves itself.
   */
  baseUrl: string;
  /** Sent as `authorization: Bearer <key>` unless a call sets its own authorization header. */
  apiKey?: ApiKeySource;
  /** Default "connect". "grpc" needs HTTP/2 and so Node (or another runtime with node:http2). */
  protocol?: LlmProtocol;
  /**
   * Deadline of calls that pass no `timeoutMs` of their own, in milliseconds. Default 60000,
   * the service's own default; 0 sends none (the service then applies DEFAULT_DEADLINE_MS).
   */
  timeoutMs?: number;
  /** Binary protobuf (default) or JSON on the Connect and gRPC-web wire. gRPC is always binary. */
  useBinaryFormat?: boolean;
  /** More interceptors, run after the one that sets the API key. */
  interceptors?: Interceptor[];
  /**
   * Node only: HTTP version of the Connect and gRPC-web protocols ("1.1" by default, "2" for
   * h2c or HTTP/2 over TLS). gRPC always uses HTTP/2. Browsers let fetch decide.
   */
  httpVersion?: "1.1" | "2";
  /** Browser build only: the fetch to use (for `credentials`, or a test double). */
  fetch?: typeof globalThis.fetch;
  /**
   * A transport of your own (e.g. `createRouterTransport` in tests). The client then ignores
   * baseUrl, protocol, timeoutMs, useBinaryFormat, httpVersion and fetch, but still adds the API key.
   */
  transport?: Transport;
}
