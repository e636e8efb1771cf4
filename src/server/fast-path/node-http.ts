/** The node:http / node:http2 request and response as the fast path uses them, and header conversions. */
import type { Http2ServerRequest } from "node:http2";
import type { IncomingMessage } from "node:http";

export type NodeRequest = IncomingMessage | Http2ServerRequest;

/** What the fast path uses of ServerResponse and Http2ServerResponse (whose method unions TypeScript cannot call). */
export interface NodeResponse {
  writeHead(status: number, headers: Record<string, string>): unknown;
  write(chunk: Uint8Array): boolean;
  end(chunk?: Uint8Array): unknown;
  addTrailers(headers: Record<string, string>): void;
  readonly headersSent: boolean;
  /** ServerResponse's; an Http2ServerResponse has none (its stream has, below). */
  readonly destroyed?: boolean;
  /** Http2ServerResponse's stream, destroyed when the client resets it. */
  readonly stream?: { readonly destroyed: boolean };
  readonly writableEnded: boolean;
  once(event: "close", listener: () => void): unknown;
  on(event: "close" | "drain", listener: () => void): unknown;
  off(event: "close" | "drain", listener: () => void): unknown;
}

export function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** The request's headers as web Headers (pseudo-headers left out), which interceptors and handlers read. */
export function webHeaders(req: NodeRequest): Headers {
  const headers = new Headers();
  const raw = req.headers;
  for (const key in raw) {
    if (key.charCodeAt(0) === 58 /* ":" */) continue;
    const value = raw[key];
    if (value === undefined) continue;
    if (typeof value === "string") headers.append(key, value);
    else for (const v of value) headers.append(key, v);
  }
  return headers;
}

export function nodeHeaders(headers: Headers, into: Record<string, string> = {}): Record<string, string> {
  headers.forEach((value, key) => {
    into[key] = value;
  });
  return into;
}

/** Makes `to` hold exactly what `from` holds (an interceptor may have answered with other Headers). */
export function copyHeaders(from: Headers, to: Headers): void {
  if (from === to) return;
  for (const key of [...to.keys()]) to.delete(key);
  from.forEach((value, key) => to.set(key, value));
}

/** Resolves once the response can take more data (or has closed). */
export function drained(res: NodeResponse): Promise<void> {
  // A closed response neither drains nor closes again.
  if (responseClosed(res)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}

/** Whether the response can take no more: ended, or its socket (HTTP/1.1) or stream (HTTP/2) is gone. */
export function responseClosed(res: NodeResponse): boolean {
  return res.writableEnded || res.destroyed === true || res.stream?.destroyed === true;
}
