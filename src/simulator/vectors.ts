import { fnv1a, mulberry32 } from "./prng.js";

/** The simulator's (and the sim provider's) vector length when a request names none. */
export const SIM_DEFAULT_DIMENSIONS = 256;

/**
 * A deterministic unit vector for a text: components drawn from a PRNG seeded by the text's hash,
 * then normalised. A shorter vector is the longer one's prefix, normalised again (as OpenAI's
 * text-embedding-3 models shorten theirs), so the same text always gives the same direction.
 */
export function simVector(text: string, dimensions: number = SIM_DEFAULT_DIMENSIONS): Float32Array {
  const random = mulberry32(fnv1a(text));
  const out = new Float32Array(dimensions);
  let norm = 0;
  for (let i = 0; i < dimensions; i++) {
    const x = random() * 2 - 1;
    out[i] = x;
    norm += x * x;
  }
  const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
  for (let i = 0; i < dimensions; i++) out[i] = (out[i] as number) * scale;
  return out;
}
