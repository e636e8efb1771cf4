/** Enveloped messages (gRPC and Connect streaming): a flags byte, a uint32 length, the message. */
import { Code, ConnectError } from "@connectrpc/connect";
import { compressed, type Compression } from "../response-compression.js";

export const ENVELOPE_HEADER_BYTES = 5;

export function encodeEnvelope(data: Uint8Array, flags = 0): Buffer {
  const out = Buffer.allocUnsafe(ENVELOPE_HEADER_BYTES + data.byteLength);
  out[0] = flags;
  out.writeUInt32BE(data.byteLength, 1);
  out.set(data, ENVELOPE_HEADER_BYTES);
  return out;
}

/** A message envelope, compressed (flag 1) when connect-node would compress it. */
export async function frame(data: Uint8Array, compression: Compression | null, flags = 0): Promise<Buffer> {
  const out = await compressed(data, compression);
  return encodeEnvelope(out.data, out.compressed ? flags | 1 : flags);
}

/** The end-of-stream flag of a Connect streaming envelope. */
export const END_STREAM_FLAG = 0b10;

/**
 * The one message of an enveloped request body, or the protocol error connect-node reports for it. With
 * `connect`, an end-of-stream envelope is skipped as connect's does (so it is not a message).
 */
export function decodeSingleEnvelope(body: Buffer, kind: string, connect = false): Uint8Array {
  if (body.byteLength === 0) throw new ConnectError(`protocol error: missing input message for ${kind} method`, Code.Unimplemented);
  if (body.byteLength < ENVELOPE_HEADER_BYTES) throw new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument);
  const flags = body[0] ?? 0;
  const length = body.readUInt32BE(1);
  if (body.byteLength < ENVELOPE_HEADER_BYTES + length) throw new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument);
  if (body.byteLength > ENVELOPE_HEADER_BYTES + length) throw new ConnectError(`protocol error: received extra input message for ${kind} method`, Code.Unimplemented);
  if ((flags & 0b01) === 0b01) throw new ConnectError("received compressed envelope, but do not know how to decompress", Code.Internal);
  if (connect && (flags & END_STREAM_FLAG) === END_STREAM_FLAG) throw new ConnectError(`protocol error: missing input message for ${kind} method`, Code.Unimplemented);
  return body.subarray(ENVELOPE_HEADER_BYTES, ENVELOPE_HEADER_BYTES + length);
}
