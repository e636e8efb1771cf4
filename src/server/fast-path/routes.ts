/** The fast path's route table: one entry per unary or server-streaming method the service implements. */
import type { DescMessage, DescMethod, DescService } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { createMethodSerializationLookup, type MethodSerializationLookup } from "@connectrpc/connect/protocol";

export interface Route {
  method: DescMethod;
  kind: "unary" | "server_streaming";
  impl: (input: unknown, ctx: HandlerContext) => unknown;
  serialization: MethodSerializationLookup<DescMessage, DescMessage>;
}

/** Routes by request path (`/<service>/<method>`). */
export function buildRoutes<S extends DescService>(service: S, impl: ServiceImpl<S>, readMaxBytes: number): Map<string, Route> {
  const routes = new Map<string, Route>();
  const implementations = impl as unknown as Record<string, ((input: unknown, ctx: HandlerContext) => unknown) | undefined>;
  for (const method of service.methods) {
    if (method.methodKind !== "unary" && method.methodKind !== "server_streaming") continue;
    const fn = implementations[method.localName];
    if (fn === undefined) continue;
    routes.set(`/${service.typeName}/${method.name}`, {
      method,
      kind: method.methodKind,
      impl: fn.bind(impl),
      serialization: createMethodSerializationLookup(method, undefined, undefined, { readMaxBytes, writeMaxBytes: 0xffffffff }),
    });
  }
  return routes;
}
