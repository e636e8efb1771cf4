import { createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { LlmService } from "../../../gen/ts/llm/v1/llm_service_pb.js";
import type { ApiKeySource, LlmClient, LlmClientOptions, LlmProtocol } from "./options.js";

/** The deadline of a call that names none, the same as the service's DEFAULT_DEADLINE_MS. */
export const DEFAULT_TIMEOUT_MS = 60_000;

const PROTOCOLS: readonly LlmProtocol[] = ["connect", "grpc", "grpc-web"];

/** Sets `authorization: Bearer <key>` on every call that does not carry an authorization header already. */
export function apiKeyInterceptor(apiKey: ApiKeySource): Interceptor {
  return (next) => async (req) => {
    if (!req.header.has("authorization")) {
      const key = typeof apiKey === "function" ? await apiKey() : apiKey;
      if (key) req.header.set("authorization", `Bearer ${checkedKey(key)}`);
    }
    return next(req);
  };
}

function checkedKey(key: string): string {
  // A key pasted with a newline or a space would otherwise fail later as an opaque header error.
  if (!/^[\x21-\x7e]+$/.test(key)) throw new TypeError("apiKey must be printable ASCII without spaces");
  return key;
}

/** What a runtime (Node, browser) supplies: a transport for a protocol. */
export interface TransportSettings {
  baseUrl: string;
  protocol: LlmProtocol;
  /** undefined: no default deadline. */
  defaultTimeoutMs: number | undefined;
  useBinaryFormat: boolean;
  interceptors: Interceptor[];
}

/** Validates the options, fills in the defaults and builds the client over the runtime's transport. */
export function buildClient(
  options: LlmClientOptions,
  makeTransport: (settings: TransportSettings, options: LlmClientOptions) => Transport,
): LlmClient {
  if (options.transport) {
    if (options.interceptors?.length) {
      throw new TypeError("with a transport of your own, give the interceptors to that transport");
    }
    return createClient(LlmService, options.apiKey === undefined ? options.transport : withApiKey(options.transport, options.apiKey));
  }
  const protocol = options.protocol ?? "connect";
  if (!PROTOCOLS.includes(protocol)) {
    throw new TypeError(`protocol must be one of ${PROTOCOLS.join(", ")} (got ${String(protocol)})`);
  }
  if (typeof options.baseUrl !== "string" || options.baseUrl === "") throw new TypeError("baseUrl is required");
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs < 0) throw new TypeError("timeoutMs must be a number of milliseconds, 0 or more");
  const interceptors = [
    ...(options.apiKey !== undefined ? [apiKeyInterceptor(options.apiKey)] : []),
    ...(options.interceptors ?? []),
  ];
  return createClient(
    LlmService,
    makeTransport(
      {
        baseUrl: options.baseUrl.replace(/\/+$/, ""),
        protocol,
        defaultTimeoutMs: timeoutMs === 0 ? undefined : timeoutMs,
        useBinaryFormat: options.useBinaryFormat ?? true,
        interceptors,
      },
      options,
    ),
  );
}

/** Adds the authorization header to the calls of a transport built elsewhere. */
function withApiKey(transport: Transport, apiKey: ApiKeySource): Transport {
  const headersWithKey = async (init: ConstructorParameters<typeof Headers>[0]): Promise<Headers> => {
    const headers = new Headers(init);
    if (!headers.has("authorization")) {
      const key = typeof apiKey === "function" ? await apiKey() : apiKey;
      if (key) headers.set("authorization", `Bearer ${checkedKey(key)}`);
    }
    return headers;
  };
  return {
    async unary(method, signal, timeoutMs, header, input, contextValues) {
      return transport.unary(method, signal, timeoutMs, await headersWithKey(header), input, contextValues);
    },
    async stream(method, signal, timeoutMs, header, input, contextValues) {
      return transport.stream(method, signal, timeoutMs, await headersWithKey(header), input, contextValues);
    },
  };
}
