/**
 * Raw HTTP/2 and HTTP/1.1 requests, and readers for what an RPC error carries on the wire (gRPC status
 * headers or trailers, gRPC-web trailer frames, Connect JSON bodies), for tests about exact wire output.
 */
import http from "node:http";
import http2 from "node:http2";
import { fromBinary } from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import { BadRequestSchema, ErrorInfoSchema, type BadRequest, type ErrorInfo } from "../../gen/ts/google/rpc/error_details_pb.js";
import { StatusSchema } from "../../gen/ts/google/rpc/status_pb.js";

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  trailers: Record<string, string>;
  body: Buffer;
}

function plain(headers: http2.IncomingHttpHeaders | http.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (k === "date" || k === ":status" || v === undefined) continue;
    out[k] = Array.isArray(v) ? v.join(", ") : String(v);
  }
  return out;
}

/** One HTTP/2 POST on a new session; resolves with headers, trailers and the whole body. */
export function h2Request(port: number, path: string, headers: Record<string, string>, body: Uint8Array): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on("error", reject);
    const stream = session.request({ ":method": "POST", ":path": path, ...headers });
    let status = 0;
    let head: Record<string, string> = {};
    let trailers: Record<string, string> = {};
    const chunks: Buffer[] = [];
    stream.on("response", (h) => {
      status = Number(h[":status"]);
      head = plain(h);
    });
    stream.on("trailers", (t) => (trailers = plain(t)));
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => {
      session.close();
      resolve({ status, headers: head, trailers, body: Buffer.concat(chunks) });
    });
    stream.on("error", reject);
    stream.end(body);
  });
}

/** One HTTP/1.1 POST on a new connection. */
export function h1Request(port: number, path: string, headers: Record<string, string>, body: Uint8Array): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method: "POST", path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const h = plain(res.headers);
        delete h["connection"];
        delete h["keep-alive"];
        resolve({ status: res.statusCode ?? 0, headers: h, trailers: plain(res.trailers), body: Buffer.concat(chunks) });
      });
    });
    req.on("error", reject);
    req.end(body);
  });
}

export function envelope(data: Uint8Array, flags = 0): Buffer {
  const out = Buffer.alloc(5 + data.byteLength);
  out[0] = flags;
  out.writeUInt32BE(data.byteLength, 1);
  out.set(data, 5);
  return out;
}

/** The enveloped frames of a gRPC or gRPC-web body. */
export function frames(body: Buffer): { flags: number; data: Buffer }[] {
  const out: { flags: number; data: Buffer }[] = [];
  for (let at = 0; at + 5 <= body.byteLength && out.length < 100_000; ) {
    const length = body.readUInt32BE(at + 1);
    out.push({ flags: body[at] ?? 0, data: body.subarray(at + 5, at + 5 + length) });
    at += 5 + length;
  }
  return out;
}

/** The header block of a gRPC-web trailer frame (flag 0x80), lower-cased names. */
export function grpcWebTrailers(body: Buffer): Record<string, string> {
  const trailer = frames(body).find((f) => (f.flags & 0x80) === 0x80);
  const out: Record<string, string> = {};
  for (const line of (trailer?.data.toString("latin1") ?? "").split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) out[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return out;
}

export interface WireError {
  code: string;
  message: string;
  info: ErrorInfo | undefined;
  badRequest: BadRequest | undefined;
}

/** The error of a gRPC response: grpc-status and its details, from the trailers or (trailers-only) the headers. */
export function grpcError(fields: Record<string, string>): WireError {
  const details = fields["grpc-status-details-bin"];
  const status = details ? fromBinary(StatusSchema, Buffer.from(details, "base64")) : undefined;
  const unpack = <T>(fn: (a: NonNullable<typeof status>["details"][number]) => T | undefined) =>
    status?.details.map(fn).find((x) => x !== undefined);
  return {
    code: fields["grpc-status"] ?? "",
    message: decodeURIComponent(fields["grpc-message"] ?? ""),
    info: unpack((a) => anyUnpack(a, ErrorInfoSchema)),
    badRequest: unpack((a) => anyUnpack(a, BadRequestSchema)),
  };
}

/** The error of a Connect unary response: its JSON body. */
export function connectError(body: Buffer): WireError {
  const json = JSON.parse(body.toString()) as { code: string; message?: string; details?: { type: string; value: string }[] };
  const detail = (type: string) => json.details?.find((d) => d.type === type)?.value;
  const decode = (value: string | undefined) => (value === undefined ? undefined : Buffer.from(value, "base64"));
  const info = decode(detail("google.rpc.ErrorInfo"));
  const badRequest = decode(detail("google.rpc.BadRequest"));
  return {
    code: json.code,
    message: json.message ?? "",
    info: info ? fromBinary(ErrorInfoSchema, info) : undefined,
    badRequest: badRequest ? fromBinary(BadRequestSchema, badRequest) : undefined,
  };
}
