/**
 * Response compression on the direct path, as connect-node does it, so both give the same bytes: the
 * first of the client's accepted encodings the server has (gzip, br — connect-node's adapter's list and
 * order, and the same zlib calls), applied to messages (gRPC) or bodies (Connect unary) of 1 KiB or more.
 * The client's list is grpc-accept-encoding for gRPC, accept-encoding for Connect unary.
 */
import { compressionBrotli, compressionGzip } from "@connectrpc/connect-node";
import { compressionNegotiate, type Compression } from "./wire/connect-internals.js";

export type { Compression };

/** What the server compresses with, in connect-node's adapter's order (rpc-adapter.ts passes the same). */
export const RESPONSE_COMPRESSIONS: readonly Compression[] = [compressionGzip, compressionBrotli];

/** connect's default compressMinBytes: smaller messages are not worth the CPU. */
export const COMPRESS_MIN_BYTES = 1024;

/** The compression for a response to an uncompressed request, or null: negotiated by connect's own rules. */
export function responseCompression(accepted: string | undefined): Compression | null {
  if (accepted === undefined || accepted === "") return null;
  return compressionNegotiate([...RESPONSE_COMPRESSIONS], null, accepted, "accept-encoding").response;
}

/** The bytes to send and whether they were compressed (only at COMPRESS_MIN_BYTES or more). */
export async function compressed(data: Uint8Array, compression: Compression | null): Promise<{ data: Uint8Array; compressed: boolean }> {
  if (compression === null || data.byteLength < COMPRESS_MIN_BYTES) return { data, compressed: false };
  return { data: await compression.compress(data), compressed: true };
}
