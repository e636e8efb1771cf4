/** Vectors as the cache keeps them: each the base64 of its little-endian float32 bytes (compact, and exact). */
export function toStoredVector(vector: Float32Array): string {
  return Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).toString("base64");
}

/** A stored vector back, or undefined when the text is not whole float32s. */
export function fromStoredVector(text: string): Float32Array | undefined {
  const bytes = Buffer.from(text, "base64");
  if (bytes.length === 0 || bytes.length % 4 !== 0) return undefined;
  // Copied: a Buffer may share a pool whose offset is not 4-byte aligned.
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
}
