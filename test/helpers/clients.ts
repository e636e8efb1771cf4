import { fromBinary, toBinary, type DescMessage, type DescService } from "@bufbuild/protobuf";
import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { LlmService } from "../../gen/ts/llm/v1/llm_service_pb.js";

export type ProtocolName = "connect-h1" | "connect-h2" | "grpc" | "grpc-web";
export const PROTOCOLS: ProtocolName[] = ["connect-h1", "connect-h2", "grpc", "grpc-web"];

export function bearer(key: string): Interceptor {
  return (next) => (req) => {
    req.header.set("authorization", `Bearer ${key}`);
    return next(req);
  };
}

/** A connect-node client of a service over one of the protocols the server speaks. */
export function connectClient<S extends DescService>(
  service: S,
  baseUrl: string,
  protocol: ProtocolName,
  key?: string,
): Client<S> {
  const interceptors = key ? [bearer(key)] : [];
  const transport =
    protocol === "connect-h1"
      ? createConnectTransport({ baseUrl, httpVersion: "1.1", interceptors })
      : protocol === "connect-h2"
        ? createConnectTransport({ baseUrl, httpVersion: "2", interceptors })
        : protocol === "grpc"
          ? createGrpcTransport({ baseUrl, interceptors })
          : createGrpcWebTransport({ baseUrl, httpVersion: "1.1", interceptors });
  return createClient(service, transport);
}

export function llmClient(baseUrl: string, protocol: ProtocolName, key?: string): Client<typeof LlmService> {
  return connectClient(LlmService, baseUrl, protocol, key);
}

function serializers(desc: DescMessage) {
  return {
    serialize: (value: unknown) => Buffer.from(toBinary(desc, value as never)),
    deserialize: (bytes: Buffer) => fromBinary(desc, bytes),
  };
}

/** A plain @grpc/grpc-js client for a protobuf-es service, built from its descriptor. */
export function grpcJsClient(service: DescService, port: number): grpc.Client & Record<string, Function> {
  const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) {
    const input = serializers(method.input);
    const output = serializers(method.output);
    definition[method.localName] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
      responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
      requestSerialize: input.serialize,
      requestDeserialize: input.deserialize,
      responseSerialize: output.serialize,
      responseDeserialize: output.deserialize,
    };
  }
  const Ctor = grpc.makeGenericClientConstructor(definition as grpc.ServiceDefinition, service.typeName);
  // The generic constructor's methods are added at run time, so they are typed loosely here.
  return new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as grpc.Client & Record<string, Function>;
}

export function grpcMetadata(key: string): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set("authorization", `Bearer ${key}`);
  return md;
}
