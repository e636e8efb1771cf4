/** Running a call through connect's interceptors, as connect-node does, without its stream plumbing. */
import { create, isMessage, type DescMessage } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor, type StreamResponse, type UnaryResponse } from "@connectrpc/connect";

export type AnyFn = (req: never) => Promise<UnaryResponse | StreamResponse>;

/** `next` wrapped in the interceptors, the first one outermost. */
export function applyInterceptors(next: AnyFn, interceptors: readonly Interceptor[]): AnyFn {
  let fn = next;
  for (let i = interceptors.length - 1; i >= 0; i--) fn = (interceptors[i] as Interceptor)(fn as never) as unknown as AnyFn;
  return fn;
}

/** A handler's answer as a message of the schema (a handler may return a plain init object). */
export function normalize(schema: DescMessage, message: unknown): never {
  return (isMessage(message, schema) ? message : create(schema, message as never)) as never;
}

/** The single request message of a server-streaming call, as the stream interceptors see it. */
export async function* single<T>(value: T): AsyncGenerator<T> {
  yield value;
}

/** Anything thrown, as the ConnectError that goes on the wire (an unknown throw is a masked INTERNAL). */
export function asConnectError(err: unknown): ConnectError {
  return err instanceof ConnectError ? err : new ConnectError("internal error", Code.Internal, undefined, undefined, err);
}
