/**
 * A unary gRPC call over a bare node:http2 session: the test chooses every header (a `grpc-timeout`
 * exactly as grpc-go or grpcio would write it, `19999984u`, `999n`), and no client-side timer races
 * the server's deadline, so the answer is the server's.
 */
import http2 from "node:http2";
import { fromBinary } from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import { ErrorInfoSchema } from "../../gen/ts/google/rpc/error_details_pb.js";
import { StatusSchema } from "../../gen/ts/google/rpc/status_pb.js";

export interface RawGrpcResult {
  /** grpc-status ("0" on success); undefined when the stream closed without one. */
  status: string | undefined;
  message: string | undefined;
  /** ErrorInfo.reason from grpc-status-details-bin. */
  reason: string | undefined;
  /** ErrorInfo.metadata (request_id among it). */
  errorMetadata: Record<string, string>;
  /** The response message (envelope removed), when there was one. */
  body: Uint8Array | undefined;
  /** From the request's headers going out (on a connected session) to the stream's end, ms. */
  elapsedMs: number;
}

export interface RawGrpcCall {
  baseUrl: string;
  path: string;
  message: Uint8Array;
  headers: Record<string, string>;
  /** A safety net for a server that never answers: the test fails instead of hanging. Default 30 s. */
  giveUpMs?: number;
}

export function rawGrpcUnary(call: RawGrpcCall): Promise<RawGrpcResult> {
  return new Promise((resolve, reject) => {
    const giveUpMs = call.giveUpMs ?? 30_000;
    const session = http2.connect(call.baseUrl);
    const fail = (err: Error) => {
      clearTimeout(giveUp);
      session.destroy();
      reject(err);
    };
    const giveUp = setTimeout(() => fail(new Error(`no answer to ${call.path} within ${giveUpMs} ms`)), giveUpMs);
    session.on("error", fail);
    // The clock starts on a connected session, so connection set-up is not counted.
    session.once("connect", () => {
      const frame = Buffer.alloc(5 + call.message.length);
      frame.writeUInt32BE(call.message.length, 1);
      frame.set(call.message, 5);
      const sentAt = performance.now();
      const stream = session.request({
        ":method": "POST",
        ":path": call.path,
        "content-type": "application/grpc",
        te: "trailers",
        ...call.headers,
      });
      const result: RawGrpcResult = { status: undefined, message: undefined, reason: undefined, errorMetadata: {}, body: undefined, elapsedMs: 0 };
      const chunks: Buffer[] = [];
      const take = (h: http2.IncomingHttpHeaders) => {
        if (typeof h["grpc-status"] === "string") result.status = h["grpc-status"];
        if (typeof h["grpc-message"] === "string") result.message = decodeURIComponent(h["grpc-message"]);
        const details = h["grpc-status-details-bin"];
        if (typeof details === "string") {
          const status = fromBinary(StatusSchema, Buffer.from(details, "base64"));
          const info = status.details.map((d) => anyUnpack(d, ErrorInfoSchema)).find((x) => x !== undefined);
          result.reason = info?.reason;
          result.errorMetadata = { ...info?.metadata };
        }
      };
      stream.on("response", take);
      stream.on("trailers", take);
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("error", fail);
      stream.on("close", () => {
        result.elapsedMs = performance.now() - sentAt;
        clearTimeout(giveUp);
        session.close();
        const data = Buffer.concat(chunks);
        if (data.length >= 5) result.body = data.subarray(5, 5 + data.readUInt32BE(1));
        resolve(result);
      });
      stream.end(frame);
    });
  });
}
