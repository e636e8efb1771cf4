/** The fast path's route table: one entry per unary or server-streaming method the service implements. */
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { methodCodecs, type MethodCodecs } from "../wire/message-codec.js";

export interface Route {
  method: DescMethod;
  kind: "unary" | "server_streaming";
  impl: (input: unknown, ctx: HandlerContext) => unknown;
  codecs: MethodCodecs;
}

/** Routes by request path (`/<service>/<method>`). */
export function buildRoutes<S extends DescService>(service: S, impl: ServiceImpl<S>): Map<string, Route> {
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
      codecs: methodCodecs(method),
    });
  }
  return routes;
}
